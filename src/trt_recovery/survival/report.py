"""Figures and tables of a survival-model fit: curves, main table, posterior predictive check, prior.

All functions take the saved posterior and its metadata (never refit). Colour-blind-safe palette,
axes labelled with units, strategy names spelled out.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from trt_recovery.labels import OKABE_ITO, strategy_label
from trt_recovery.models.survival_cure import THRESHOLD_LADDER
from trt_recovery.schema import load_schema
from trt_recovery.survival import predict as P
from trt_recovery.survival.families import get_family

TIMES = np.linspace(0.1, 36, 80)


def strategies_with_evidence(meta: dict) -> list[str]:
    used = pd.DataFrame(meta["used_rows"])
    order = load_schema().terms("strategy")
    present = set(used["strategy"]) if len(used) else set()
    return [s for s in order if s in present]


def main_table(posterior, meta, population: str = "trt", threshold: str = "any", t_check: float = 12.0,
               seed: int = 0) -> pd.DataFrame:
    """Median time and P(recovered by t_check) per strategy (average study; 95% intervals)."""
    rows = []
    for s in load_schema().terms("strategy"):
        prof = P.Profile(strategy=s, population=population, threshold=threshold)
        med = P.median_time(posterior, meta, prof)
        r = P.recovered_by(posterior, meta, prof, [t_check])[:, 0]
        rn = P.recovered_by(posterior, meta, prof, [t_check], new_study=True, seed=seed)[:, 0]
        never = P.p_never(posterior, meta, prof)
        finite = med[np.isfinite(med)]
        rows.append(
            {
                "strategy": s,
                "strategy_label": strategy_label(s),
                "direct_evidence": P.direct_evidence(meta, s),
                "median_months": float(np.median(med)),
                "median_lower95": float(np.quantile(finite, 0.025)) if len(finite) else np.inf,
                "median_upper95": float(np.quantile(med, 0.975)),
                f"p_recovered_{t_check:g}m": float(np.median(r)),
                f"p_recovered_{t_check:g}m_lower95": float(np.quantile(r, 0.025)),
                f"p_recovered_{t_check:g}m_upper95": float(np.quantile(r, 0.975)),
                f"p_recovered_{t_check:g}m_new_study_lower95": float(np.quantile(rn, 0.025)),
                f"p_recovered_{t_check:g}m_new_study_upper95": float(np.quantile(rn, 0.975)),
                "p_never": float(np.median(never)),
            }
        )
    return pd.DataFrame(rows)


def curves_figure(posterior, meta, population: str = "trt", threshold: str = "any") -> plt.Figure:
    """P(recovered by t) per strategy with direct evidence; 95% bands (average study, new study dotted)."""
    strategies = strategies_with_evidence(meta) or ["none"]
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, s in enumerate(strategies):
        prof = P.Profile(strategy=s, population=population, threshold=threshold)
        c = OKABE_ITO[i % len(OKABE_ITO)]
        draws = P.recovered_by(posterior, meta, prof, TIMES)
        new = P.recovered_by(posterior, meta, prof, TIMES, new_study=True, seed=1)
        ax.plot(TIMES, np.median(draws, 0), color=c, lw=2, label=strategy_label(s))
        ax.fill_between(TIMES, np.quantile(draws, 0.025, 0), np.quantile(draws, 0.975, 0), color=c, alpha=0.18)
        ax.plot(TIMES, np.quantile(new, 0.025, 0), color=c, lw=0.8, ls=":")
        ax.plot(TIMES, np.quantile(new, 0.975, 0), color=c, lw=0.8, ls=":")
    ax.set_xlabel("Months since time zero (stopping testosterone or starting restart drugs)")
    ax.set_ylabel(f"P(recovered by t), threshold '{threshold}'")
    ax.set_ylim(0, 1)
    ax.set_title(f"Recovery curves, population '{population}' (average study; dotted: new study, 95%)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def _obs_predictors(posterior, meta, arm_id, threshold):
    post = posterior["posterior"].to_dataset()
    mu = post["arm_time_logscale"].sel(arm=arm_id).stack(s=("chain", "draw")).values
    eta = post["arm_cure_logit"].sel(arm=arm_id).stack(s=("chain", "draw")).values
    return mu + P._threshold(post, "time", threshold), eta + P._threshold(post, "cure", threshold)


def ppc_table(posterior, meta) -> pd.DataFrame:
    """Observed summary vs posterior predicted summary, one row per likelihood observation."""
    fam = get_family(P.family_of(meta))
    k = P._shape(posterior, meta)
    post_terms = meta.get("terms", {})
    rows = []
    for name, recs in post_terms.items():
        for r in recs:
            mu, eta = _obs_predictors(posterior, meta, r["arm_id"], r["threshold"])
            p_rec = 1 / (1 + np.exp(eta))
            if name == "interval_count":
                R = lambda t: p_rec * np.exp(fam.log_cdf(np.maximum(t, 1e-9), mu, k)) if t > 0 else 0.0  # noqa: E731
                pred = (R(r["t1"]) - R(r["t0"])) / (1 - R(r["t0"]))
                obs = r["events"] / r["at_risk"]
                what = f"recovered in ({r['t0']:g}, {r['t1']:g}] months"
            elif name == "quantile_time":
                if r["over_all"]:
                    ok = p_rec > r["p"]
                    pred = np.full(mu.shape, np.inf)
                    pred[ok] = fam.quantile(r["p"] / p_rec[ok], mu[ok], k[ok])
                else:
                    pred = fam.quantile(r["p"], mu, k)
                obs = r["value"]
                what = f"q{r['p']:g} time, {'all men' if r['over_all'] else 'recoverers'} (months)"
            elif name == "mean_time":
                pred = fam.truncated_moment(1, r["tau"], mu, k)
                obs = r["value"]
                what = "mean time among recoverers (months)"
            else:
                continue
            lo, med, hi = np.quantile(pred, [0.025, 0.5, 0.975])
            rows.append({"outcome_id": r["outcome_id"], "arm_id": r["arm_id"], "threshold": r["threshold"],
                         "term": name, "summary": what, "observed": obs, "predicted_median": med,
                         "predicted_lower95": lo, "predicted_upper95": hi, "inside_95": bool(lo <= obs <= hi)})
    return pd.DataFrame(rows)


def ppc_figure(ppc: pd.DataFrame) -> plt.Figure:
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.4 * max(len(ppc), 4) + 1.5), gridspec_kw={"width_ratios": [1, 1]})
    for ax, kind, xlabel in (
        (axes[0], ppc[ppc.term == "interval_count"], "Proportion recovered in the interval"),
        (axes[1], ppc[ppc.term != "interval_count"], "Time (months)"),
    ):
        for y, r in enumerate(kind.itertuples()):
            hi = r.predicted_upper95 if np.isfinite(r.predicted_upper95) else np.nan
            ax.plot([r.predicted_lower95, hi], [y, y], color=OKABE_ITO[4], lw=2)
            ax.plot(r.predicted_median, y, "o", color=OKABE_ITO[4], ms=4)
            ax.plot(r.observed, y, "x", color=OKABE_ITO[5], ms=8, mew=2)
        ax.set_yticks(range(len(kind)), [f"{r.arm_id} [{r.threshold}] {r.summary}" for r in kind.itertuples()],
                      fontsize=7)
        ax.set_xlabel(xlabel)
    axes[0].set_title("Counts: observed (x) vs predicted 95%")
    axes[1].set_title("Times: observed (x) vs predicted 95%")
    fig.tight_layout()
    return fig


def prior_predictive_figure(prior: xr.DataTree, meta: dict) -> plt.Figure:
    """Implied median time and P(recovered by 12 months) for the reference profile under the prior."""
    prof = P.Profile(strategy="none", population="trt", threshold="any")
    med = P.median_time(prior, meta, prof)
    r12 = P.recovered_by(prior, meta, prof, [12.0])[:, 0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    finite = med[np.isfinite(med) & (med < 1e4)]
    axes[0].hist(np.log10(finite), bins=50, color=OKABE_ITO[1])
    ticks = [7 / 30.4, 1, 3, 12, 36, 120]
    axes[0].set_xticks(np.log10(ticks), ["1 wk", "1 mo", "3 mo", "1 yr", "3 yr", "10 yr"], fontsize=8)
    axes[0].set_xlabel("Prior median time to recovery (log scale)")
    axes[0].set_title(f"Prior predictive: {np.mean(~np.isfinite(med)):.0%} of draws never reach 50%")
    axes[1].hist(r12, bins=40, color=OKABE_ITO[2])
    axes[1].set_xlabel("Prior P(recovered by 12 months)")
    for ax in axes:
        ax.set_ylabel("Draws")
    fig.tight_layout()
    return fig


def threshold_levels() -> list[str]:
    return list(THRESHOLD_LADDER)
