"""Posterior summaries used by every table, figure and command: one definition of an interval.

Intervals are equal-tailed (arviz-stats ``eti``) at :data:`CI_PROB`; point estimates are posterior
medians; Monte Carlo standard errors come from arviz-stats ``mcse`` (``method="median"`` for a
median). A quantity that is infinite in some draws (a median time that is never reached) is
summarised without interpolating across infinity (``inverted_cdf`` quantiles), so an interval end
is either a number or ``inf``, never ``nan``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # xarray loads lazily: the command line's fast answers import this module
    import xarray as xr

CI_PROB = 0.95
SAMPLE_DIMS = ("chain", "draw")


def _as_dataarray(draws) -> xr.DataArray:
    import xarray as xr

    if isinstance(draws, xr.DataArray):
        if all(d in draws.dims for d in SAMPLE_DIMS):
            return draws
        if "sample" in draws.dims:
            return draws.rename(sample="draw").expand_dims(chain=1).transpose("chain", "draw", ...)
    a = np.asarray(draws, dtype=float).reshape(-1)
    return xr.DataArray(a[None, :], dims=SAMPLE_DIMS)


def interval(draws, prob: float = CI_PROB) -> tuple[float, float, float]:
    """(median, lower, upper) of scalar draws (an array, or a DataArray over chain and draw)."""
    import arviz_stats as azs

    da = _as_dataarray(draws)
    values = da.values
    if np.all(np.isfinite(values)):
        lo, hi = np.asarray(azs.eti(da, prob=prob)).ravel()
        return float(np.median(values)), float(lo), float(hi)
    flat = values.reshape(-1)
    q = np.quantile(flat, [0.5, (1 - prob) / 2, 1 - (1 - prob) / 2], method="inverted_cdf")
    return float(q[0]), float(q[1]), float(q[2])


def weighted_interval(draws, log_weights, prob: float = CI_PROB) -> tuple[float, float, float]:
    """:func:`interval` of draws carrying importance weights ``exp(log_weights)`` (normalised here):
    numpy's weighted quantiles, inverted CDF."""
    w = np.exp(np.asarray(log_weights, float) - np.max(log_weights))
    q = np.quantile(np.asarray(draws, float).reshape(-1), [0.5, (1 - prob) / 2, 1 - (1 - prob) / 2],
                    weights=w.reshape(-1) / w.sum(), method="inverted_cdf")
    return float(q[0]), float(q[1]), float(q[2])


def summarise_numpy(draws, prob: float = CI_PROB) -> dict[str, float]:
    """:func:`summarise` with numpy alone (no arviz-stats, no xarray): the same numbers (linear
    quantiles are what ``eti`` computes; a test checks both), for answers that must not load the
    sampler stack (:mod:`trt_recovery.survival.calculator`)."""
    x = np.asarray(draws, float).reshape(-1)
    method = "linear" if np.all(np.isfinite(x)) else "inverted_cdf"
    q = np.quantile(x, [0.5, (1 - prob) / 2, 1 - (1 - prob) / 2], method=method)
    return {"median": float(q[0]), "lower": float(q[1]), "upper": float(q[2])}


def summarise(draws, prob: float = CI_PROB) -> dict[str, float]:
    """``{"median", "lower", "upper"}`` of scalar draws (see :func:`interval`)."""
    med, lo, hi = interval(draws, prob)
    return {"median": med, "lower": lo, "upper": hi}


def interval_over(da: xr.DataArray, prob: float = CI_PROB) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median, lower and upper over chain and draw of a DataArray with other dimensions."""
    q = da.quantile([0.5, (1 - prob) / 2, 1 - (1 - prob) / 2], dim=list(SAMPLE_DIMS))
    return q.isel(quantile=0).values, q.isel(quantile=1).values, q.isel(quantile=2).values


def mcse_median(draws) -> float:
    """Monte Carlo standard error of the posterior median (arviz-stats)."""
    import arviz_stats as azs

    da = _as_dataarray(draws)
    if not np.all(np.isfinite(da.values)):
        return float("nan")
    return float(np.asarray(azs.mcse(da, method="median")))


#: Contraction thresholds of :func:`evidence_flag` (the rule is written once, here, and in the README).
DATA_INFORMED, PARTLY_INFORMED = 0.5, 0.1


def _finite_sd(draws) -> float:
    """SD of the finite draws (a median time is infinite in draws where it is never reached)."""
    x = np.asarray(draws, float).reshape(-1)
    x = x[np.isfinite(x)]
    return float(np.std(x)) if len(x) else float("nan")


def contraction(prior_draws, posterior_draws) -> float:
    """1 - posterior variance / prior variance of a quantity (finite draws only; nan when undefined).

    1 means the data fixed the quantity, 0 that its uncertainty is the prior's, below 0 that the
    posterior is wider (a conflict or a prior-dominated quantity with a heavy tail).
    """
    pri = np.asarray(prior_draws, float).reshape(-1)
    post = np.asarray(posterior_draws, float).reshape(-1)
    pri, post = pri[np.isfinite(pri)], post[np.isfinite(post)]
    if len(pri) < 2 or len(post) < 2 or np.var(pri) == 0:
        return float("nan")
    return float(1.0 - np.var(post) / np.var(pri))


def evidence_flag(c: float, prior_dominated: bool = False, direct: bool = True) -> str:
    """The plain flag of a quantity, from its contraction and its power-scaling diagnosis.

    "no direct evidence" first: a strategy no used row reports is estimated from the other
    strategies' data and its own prior (the contraction then measures what was borrowed, not
    evidence about it).

    "data-informed": posterior variance at most half the prior's (contraction >= 0.5) and not
    prior-dominated by power-scaling (:mod:`trt_recovery.power_scaling`: sensitive to the prior,
    insensitive to the likelihood); "partly informed": contraction >= 0.1 (or >= 0.5 but
    prior-dominated); else "mostly prior".
    """
    if not direct:
        return "no direct evidence"
    if not np.isfinite(c):
        return "not assessable"
    if c >= DATA_INFORMED and not prior_dominated:
        return "data-informed"
    if c >= PARTLY_INFORMED:
        return "partly informed"
    return "mostly prior"


def flag_columns(prior_draws, posterior_draws, sensitivity: dict | None = None, direct: bool = True) -> dict:
    """Prior SD, posterior SD, contraction, power-scaling sensitivities and the evidence flag of a
    quantity, as table columns (``sensitivity``: a row of
    :func:`trt_recovery.power_scaling.sensitivity_table`, when the fit allows it)."""
    c = contraction(prior_draws, posterior_draws)
    out = {"prior_sd": _finite_sd(prior_draws), "posterior_sd": _finite_sd(posterior_draws),
           "contraction": c}
    dominated = False
    if sensitivity is not None:
        out.update({"prior_sensitivity": float(sensitivity["prior_sensitivity"]),
                    "likelihood_sensitivity": float(sensitivity["likelihood_sensitivity"]),
                    "sensitivity_diagnosis": str(sensitivity["diagnosis"])})
        dominated = str(sensitivity["diagnosis"]).startswith("prior-dominated")
    out["evidence_flag"] = evidence_flag(c, dominated, direct)
    return out
