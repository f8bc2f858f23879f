"""Model checks across fits: LOO comparison of families and headline numbers across sensitivity fits.

LOO (PSIS, arviz) uses every observed likelihood term of a fit pooled into one vector (one entry
per reported summary), so fits of the same data with different families are comparable. With few
observations per study the Pareto-k diagnostics are often high; the table reports them, and a
reader should treat the comparison as indicative only when they are.
"""

from __future__ import annotations

from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from trt_recovery.posterior import load_fit
from trt_recovery.summaries import interval
from trt_recovery.survival import predict as P


def load_or_reason(src: str | Path):
    """(fit, "") for a usable fit; (None, reason) for one that failed its checks, is stale or is
    missing: sensitivity outputs list such fits with the reason instead of stopping."""
    from trt_recovery.posterior import FitFailedError, StaleFitError

    try:
        return load_fit(src), ""
    except (FitFailedError, StaleFitError, FileNotFoundError) as exc:
        return None, str(exc)


def pooled_log_likelihood(dt: xr.DataTree) -> xr.DataTree:
    """A copy with one log-likelihood variable ``all`` holding every observation of every term."""
    ll = dt["log_likelihood"].to_dataset()
    parts = []
    for v in ll.data_vars:
        obs_dim = [d for d in ll[v].dims if d not in ("chain", "draw")][0]
        da = ll[v].rename({obs_dim: "obs"})
        parts.append(da.assign_coords(obs=[f"{v}:{i}" for i in range(da.sizes["obs"])]))
    pooled = xr.concat(parts, dim="obs")
    return xr.DataTree.from_dict({"posterior": dt["posterior"].to_dataset(), "log_likelihood": xr.Dataset({"all": pooled})})


def loo_comparison(sources: dict[str, str | Path]) -> pd.DataFrame:
    """arviz ``compare`` (stacking) of fits of the same data, with the worst Pareto k of each.

    When the comparison itself cannot be computed (for example a standard error that is not
    finite), each fit's own PSIS-LOO is still reported, with the reason in a ``note`` column.
    """
    trees, missing = {}, {}
    for label, src in sources.items():
        fit, reason = load_or_reason(src)
        if fit is None:
            missing[label] = f"not compared: {reason}"
        else:
            trees[label] = pooled_log_likelihood(fit.tree)
    if len(trees) < 2:
        return pd.DataFrame({"note": {**missing, **{k: "only fit available" for k in trees}}})
    loos = {label: az.loo(t, var_name="all", pointwise=True) for label, t in trees.items()}
    worst_k = {label: float(np.max(loo.pareto_k)) for label, loo in loos.items()}
    try:
        table = az.compare(trees, var_name="all").copy()
        table["note"] = ""
    except (ValueError, FloatingPointError) as exc:
        table = pd.DataFrame({"elpd": {k: float(v.elpd) for k, v in loos.items()},
                              "se": {k: float(v.se) for k, v in loos.items()},
                              "p": {k: float(v.p) for k, v in loos.items()}}).sort_values("elpd", ascending=False)
        table["note"] = f"comparison not computed: {exc}"
    table["pareto_k_max"] = [worst_k[i] for i in table.index]
    for label, note in missing.items():  # failed or missing fits are listed, not silently dropped
        table.loc[label, "note"] = note
    return table


def headline_across(sources: dict[str, str | Path], population: str = "trt", threshold: str = "any",
                    t: float = 12.0) -> pd.DataFrame:
    """Median time and P(recovered by t) per strategy with direct evidence, for each fit.

    A fit that failed its convergence checks (or was never made) gets one row saying so and no
    numbers. A fit that uses exactly the rows of the first source and differs from it in nothing
    else that reaches the model is marked as changing nothing (``note``).
    """
    rows = []
    first = None  # (rows, priors, model) of the first fit that loads
    for label, src in sources.items():
        fit, reason = load_or_reason(src)
        if fit is None:
            rows.append({"fit": label, "strategy": None, "note": f"no result: {reason}"})
            continue
        identity = (fit.tree.attrs.get("model_data_hash"), fit.priors, fit.model)
        same = first is not None and identity == first
        if first is None:
            first = identity
        note = ("same rows, priors and model as the first fit: this sensitivity analysis changes nothing"
                if same else "")
        strategies = sorted(set(fit.used["strategy"]))
        pred = P.Predictions(fit, [P.Profile(strategy=s, population=population, threshold=threshold) for s in strategies])
        med_all = pred.median_time()
        r_all = pred.recovered_by([t]).isel(time=0)
        for i, s in enumerate(strategies):
            r = interval(r_all.isel(profile=i))
            rows.append({"fit": label, "strategy": s, "rows_used": len(fit.used),
                         "median_months": interval(med_all.isel(profile=i))[0],
                         f"p_recovered_{t:g}m": r[0],
                         f"p_recovered_{t:g}m_lower95": r[1],
                         f"p_recovered_{t:g}m_upper95": r[2], "note": note})
    cols = ["fit", "strategy", "rows_used", "median_months", f"p_recovered_{t:g}m", f"p_recovered_{t:g}m_lower95",
            f"p_recovered_{t:g}m_upper95", "note"]
    return pd.DataFrame(rows).reindex(columns=cols)


def across_figure(across: pd.DataFrame, t: float = 12.0):
    """P(recovered by t) with 95% intervals per strategy, one colour per fit."""
    import matplotlib.pyplot as plt

    from trt_recovery.labels import OKABE_ITO, strategy_label

    across = across.dropna(subset=["strategy"])
    fits = list(dict.fromkeys(across["fit"]))
    strategies = sorted(set(across["strategy"]))
    labelled: set[str] = set()
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(strategies) * max(1, len(fits) / 3) + 1.5))
    col = f"p_recovered_{t:g}m"
    for i, s in enumerate(strategies):
        for j, f in enumerate(fits):
            r = across[(across.strategy == s) & (across.fit == f)]
            if r.empty:
                continue
            y = i + (j - (len(fits) - 1) / 2) * 0.12
            r = r.iloc[0]
            ax.plot([r[f"{col}_lower95"], r[f"{col}_upper95"]], [y, y], color=OKABE_ITO[j % len(OKABE_ITO)], lw=2,
                    label=None if f in labelled else f)
            labelled.add(f)
            ax.plot(r[col], y, "o", color=OKABE_ITO[j % len(OKABE_ITO)], ms=4)
    ax.set_yticks(range(len(strategies)), [strategy_label(s) for s in strategies])
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"P(recovered by {t:g} months), posterior median and 95% interval")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def write_across(across: pd.DataFrame, t: float = 12.0, pnever: pd.DataFrame | None = None) -> list[Path]:
    """Export the across-fits table and figure (``survival_sensitivity_across``) and, when given,
    the P(never) prior check (``survival_pnever_check``)."""
    import matplotlib.pyplot as plt

    from trt_recovery.report import save_figure
    from trt_recovery.tables import write_table

    out = write_table(across, "survival_sensitivity_across", float_format="{:.3g}")
    fig = across_figure(across, t)
    out += save_figure(fig, "survival_sensitivity_across")
    plt.close(fig)
    if pnever is not None:
        out += write_table(pnever, "survival_pnever_check", float_format="{:.3g}")
    return out


def pnever_check(sources: dict[str, str | Path], population: str = "trt", threshold: str = "any") -> pd.DataFrame:
    """P(never recovers) of every strategy with direct evidence: prior (the fit's prior draws) and
    posterior median with 95% interval, and the contraction, for each fit (a prior predictive
    check of the non-recovery fraction and its sensitivity fit side by side)."""
    from trt_recovery.summaries import contraction

    rows = []
    for label, src in sources.items():
        fit, reason = load_or_reason(src)
        if fit is None:
            rows.append({"fit": label, "strategy": None, "note": f"no result: {reason}"})
            continue
        strategies = sorted(set(fit.used["strategy"]))
        profiles = [P.Profile(strategy=s, population=population, threshold=threshold) for s in strategies]
        post = P.Predictions(fit, profiles).p_never()
        prior = P.Predictions(fit, profiles, group="prior").p_never()
        for i, s in enumerate(strategies):
            pr, po = interval(prior.isel(profile=i)), interval(post.isel(profile=i))
            rows.append({"fit": label, "strategy": s, "prior_median": pr[0], "prior_lower95": pr[1],
                         "prior_upper95": pr[2], "posterior_median": po[0], "posterior_lower95": po[1],
                         "posterior_upper95": po[2],
                         "contraction": contraction(prior.isel(profile=i).values, post.isel(profile=i).values),
                         "note": ""})
    cols = ["fit", "strategy", "prior_median", "prior_lower95", "prior_upper95", "posterior_median",
            "posterior_lower95", "posterior_upper95", "contraction", "note"]
    return pd.DataFrame(rows).reindex(columns=cols)
