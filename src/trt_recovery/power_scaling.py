"""Prior and likelihood sensitivity of derived quantities by power-scaling (priorsense).

Power-scaling raises the prior (or the likelihood) to a power :math:`\\alpha` close to 1 and measures,
with Pareto-smoothed importance weights and without refitting, how far the posterior of a
quantity moves (Kallioinen et al. 2024, Stat Comput 34:57; ``arviz_stats.psense``):

.. math::

    p_\\alpha(\\theta \\mid y) \\propto p(\\theta)^{\\alpha}\\, p(y \\mid \\theta)
    \\quad\\text{(prior scaling)},\\qquad
    p_\\alpha(\\theta \\mid y) \\propto p(\\theta)\\, p(y \\mid \\theta)^{\\alpha}
    \\quad\\text{(likelihood scaling)}.

The sensitivity is the cumulative Jensen-Shannon distance between the base and the scaled
posterior per unit of :math:`\\log\\alpha`. Above :data:`THRESHOLD` (0.05, the method's default):
sensitive. A quantity that is prior-sensitive and likelihood-insensitive rests on its prior (the
data cannot move it); sensitive to both is a possible prior-data conflict.

Which priors are scaled: the priors of the model's top-level parameters, not the standardised
study effects (``*_z``) nor imputed data values (``*_imputed``), which are part of the
hierarchical likelihood rather than a statement of belief (the priorsense recommendation).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

#: Sensitivity above which a quantity is called sensitive to the prior or to the likelihood.
THRESHOLD = 0.05
#: Suffixes of free variables whose density is not power-scaled (see the module docstring).
NOT_SCALED_SUFFIXES = ("_z", "_imputed")


def scaled_prior_names(model) -> list[str]:
    """Free variables of a PyMC model whose priors are power-scaled."""
    return [v.name for v in model.free_RVs if not v.name.endswith(NOT_SCALED_SUFFIXES)]


def _per_draw(da: xr.DataArray) -> xr.DataArray:
    """Sum over every dimension but (chain, draw), dropping the other coordinates."""
    extra = [d for d in da.dims if d not in ("chain", "draw")]
    da = da.sum(extra) if extra else da
    return da.drop_vars([c for c in da.coords if c not in ("chain", "draw")], errors="ignore")


def log_prior_dataset(posterior: xr.DataTree | xr.Dataset, model) -> xr.Dataset:
    """Log prior density of each scaled prior at every posterior draw (summed over its own
    dimensions), one variable per prior, dims (chain, draw). Saved with every fit as ``log_prior``."""
    import pymc as pm

    names = scaled_prior_names(model)
    post = posterior["posterior"].to_dataset() if isinstance(posterior, xr.DataTree) else posterior
    tree = xr.DataTree.from_dict({"posterior": post})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        out = pm.stats.compute_log_prior(tree, var_names=names, model=model, extend_inferencedata=False,
                                         progressbar=False)
    ds = out["log_prior"].to_dataset() if isinstance(out, xr.DataTree) else out
    return xr.Dataset({name: _per_draw(ds[name]) for name in names})


def log_prior(fit) -> xr.DataArray:
    """Joint log prior density of the scaled priors at every posterior draw, dims (chain, draw).

    Read from the fit's ``log_prior`` group; for a fit saved without one, the model is rebuilt
    from the data saved with the fit (never refitted) and the density evaluated.
    """
    if "log_prior" in fit.tree.children:
        ds = fit.tree["log_prior"].to_dataset()
    else:
        ds = log_prior_dataset(fit.posterior, fit.build_model())
    return sum(ds[name] for name in ds.data_vars).rename("log_prior")


def log_likelihood(fit) -> xr.DataArray:
    """Total log likelihood at every posterior draw (the sum of every observed term), dims (chain, draw)."""
    if "log_likelihood" not in fit.tree.children:
        raise ValueError(f"posterior of {fit.analysis!r} has no log_likelihood group; refit it with log_likelihood=True")
    ds = fit.tree["log_likelihood"].to_dataset()
    return sum(_per_draw(ds[name]) for name in ds.data_vars).rename("log_likelihood")


def diagnosis(prior_sensitivity: float, likelihood_sensitivity: float, threshold: float = THRESHOLD) -> str:
    """Plain reading of the two sensitivities (the priorsense diagnosis, in words)."""
    if not (np.isfinite(prior_sensitivity) and np.isfinite(likelihood_sensitivity)):
        return "not assessable"
    p, lk = prior_sensitivity > threshold, likelihood_sensitivity > threshold
    if p and not lk:
        return "prior-dominated (data cannot move it)"
    if p and lk:
        return "possible prior-data conflict"
    if not lk:
        return "low sensitivity to prior and data"
    return "data-dominated"


def sensitivity_table(quantities: dict[str, xr.DataArray], log_prior: xr.DataArray,
                      log_likelihood: xr.DataArray, threshold: float = THRESHOLD) -> pd.DataFrame:
    """Prior and likelihood power-scaling sensitivity of each quantity.

    Parameters
    ----------
    quantities : dict of name -> DataArray with dims (chain, draw)
        Derived quantities (for example P(recovered by 12 months) of one strategy). Non-finite
        draws (a median that is never reached) are replaced by a large finite value so that the
        share of such draws still counts.
    log_prior, log_likelihood : DataArray, dims (chain, draw)
        Joint log prior of the scaled priors and total log likelihood at the same draws.

    Returns
    -------
    DataFrame indexed by quantity name with ``prior_sensitivity``, ``likelihood_sensitivity`` and
    ``diagnosis``.
    """
    from arviz_stats import psense

    names = list(quantities)
    cols = []
    for name in names:
        v = np.asarray(quantities[name].values, float)
        finite = v[np.isfinite(v)]
        cap = (np.max(np.abs(finite)) * 10 + 1) if len(finite) else 1.0
        cols.append(np.where(np.isfinite(v), v, cap))
    # one variable with a quantity dimension: psense treats each element on its own, and one
    # variable is far quicker than thousands (xarray's per-variable cost)
    coords = {"chain": log_prior["chain"].values, "draw": log_prior["draw"].values}
    tree = xr.DataTree.from_dict({
        "posterior": xr.Dataset({"q": (("chain", "draw", "quantity"), np.stack(cols, axis=-1))}, coords=coords),
        "log_prior": xr.Dataset({"lp": _per_draw(log_prior)}),
        "log_likelihood": xr.Dataset({"ll": _per_draw(log_likelihood)}),
    })
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pareto-k warnings of constant quantities
        ps = np.asarray(psense(tree, group="prior")["q"]).reshape(-1)
        ls = np.asarray(psense(tree, group="likelihood")["q"]).reshape(-1)
    rows = {}
    for i, name in enumerate(names):
        p, lk = float(ps[i]), float(ls[i])
        rows[name] = {"prior_sensitivity": p, "likelihood_sensitivity": lk,
                      "diagnosis": diagnosis(p, lk, threshold)}
    return pd.DataFrame.from_dict(rows, orient="index")


def fit_sensitivity(fit, quantities: dict[str, xr.DataArray], threshold: float = THRESHOLD) -> pd.DataFrame | None:
    """:func:`sensitivity_table` of quantities computed from a fit's posterior draws; None for a fit
    saved without its log likelihood (a refit that is only summarised) or with no quantities."""
    if "log_likelihood" not in fit.tree.children or not quantities:
        return None
    return sensitivity_table(quantities, log_prior(fit), log_likelihood(fit), threshold)
