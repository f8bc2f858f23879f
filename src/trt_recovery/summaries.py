"""Posterior summaries used by every table, figure and command: one definition of an interval.

Intervals are equal-tailed (arviz-stats ``eti``) at :data:`CI_PROB`; point estimates are posterior
medians; Monte Carlo standard errors come from arviz-stats ``mcse`` (``method="median"`` for a
median). A quantity that is infinite in some draws (a median time that is never reached) is
summarised without interpolating across infinity (``inverted_cdf`` quantiles), so an interval end
is either a number or ``inf``, never ``nan``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

CI_PROB = 0.95
SAMPLE_DIMS = ("chain", "draw")


def _as_dataarray(draws) -> xr.DataArray:
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
