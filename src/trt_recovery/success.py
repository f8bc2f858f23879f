"""Results of the success-rate analysis: observed arm rates, pooled estimates, figure and tables.

Every function takes a :class:`trt_recovery.posterior.Fit`; ``report_fit`` writes all outputs and
``headline`` gives the draws ``make verify`` and the leave-one-study-out analysis check.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from trt_recovery.forest import cell_evidence, cell_rows, follow_up
from trt_recovery.labels import population_label
from trt_recovery.power_scaling import fit_sensitivity
from trt_recovery.summaries import CI_PROB, flag_columns, interval



def observed_rates(used: pd.DataFrame) -> pd.DataFrame:
    """Per-arm observed recovery proportion with exact (Clopper-Pearson) 95% intervals."""
    rows = []
    for r in used.itertuples():
        n, k = int(r.n), int(r.events)
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=CI_PROB, method="exact")
        rows.append(
            {
                "arm_id": r.arm_id,
                "study_id": r.study_id,
                "strategy": r.strategy,
                "population": r.population,
                "threshold": r.threshold,
                "time_months": r.time_months,
                "n": n,
                "events": k,
                "rate": k / n,
                "lower": ci.low,
                "upper": ci.high,
            }
        )
    return pd.DataFrame(rows)


def pooled_table(fit, seed: int = 0) -> pd.DataFrame:
    """Per strategy x population cell with data: evidence counts, pooled rate (average study) and
    95% prediction interval (new study, drawn with ``seed``). Posterior medians with 95%
    equal-tailed intervals."""
    from trt_recovery.models.binomial_success import PREDICTION_VARS

    post = fit.posterior.merge(fit.predictions(list(PREDICTION_VARS), seed=seed))
    used = fit.used
    has_prior = "prior" in fit.tree.children
    cells = list(used.groupby(["strategy", "population"], sort=True))
    sens = fit_sensitivity(fit, {f"{s}|{p}": post["cell_rate"].sel(strategy=s, population=p) for (s, p), _ in cells})
    rows = []
    for (s, p), sub in cells:
        med, lo, hi = interval(post["cell_rate"].sel(strategy=s, population=p))
        _, plo, phi = interval(post["cell_predicted_rate"].sel(strategy=s, population=p))
        rows.append(
            {
                **cell_evidence(s, p, sub, "n"),
                "recovered": int(sub["events"].sum()),
                "pooled_rate_median": float(med),
                "pooled_rate_lower95": float(lo),
                "pooled_rate_upper95": float(hi),
                "prediction_lower95": float(plo),
                "prediction_upper95": float(phi),
                **(flag_columns(fit.prior["cell_rate"].sel(strategy=s, population=p).values,
                                post["cell_rate"].sel(strategy=s, population=p).values,
                                None if sens is None else sens.loc[f"{s}|{p}"]) if has_prior else {}),
            }
        )
    return pd.DataFrame(rows)


def population_shift_table(fit) -> pd.DataFrame:
    """Population effects on the logit scale relative to the reference population (first)."""
    shift = fit.posterior["population_shift"]
    rows = []
    for p in shift["population"].values:
        med, lo, hi = interval(shift.sel(population=p))
        rows.append({"population": str(p), "population_label": population_label(str(p)),
                     "logit_shift_median": float(med), "lower95": float(lo), "upper95": float(hi)})
    return pd.DataFrame(rows)


def forest_plot(observed: pd.DataFrame, pooled: pd.DataFrame, title: str = "") -> plt.Figure:
    """Forest plot: observed arm rates (exact 95% CI), pooled rate (95% CrI) and prediction interval."""
    rows, colours = cell_rows(
        observed, pooled, lambda r: f"{r.study_id}  {r.events}/{r.n}  ({r.threshold}, {follow_up(r.time_months)})", "pooled"
    )
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(rows) + 1.4))
    for y, (kind, label, r) in enumerate(reversed(rows)):
        if kind == "arm":
            c = colours[r["cell"]]
            ax.errorbar(r["rate"], y, xerr=[[r["rate"] - r["lower"]], [r["upper"] - r["rate"]]], fmt="s", color=c, ms=5, capsize=3)
        else:
            c = colours[r["cell"]]
            ax.plot([r["prediction_lower95"], r["prediction_upper95"]], [y, y], color=c, lw=1, ls=":", label=None)
            m, lo, hi = r["pooled_rate_median"], r["pooled_rate_lower95"], r["pooled_rate_upper95"]
            ax.fill([lo, m, hi, m], [y, y + 0.3, y, y - 0.3], color=c, alpha=0.85)
    ax.set_yticks(range(len(rows)), [label for _, label, _ in reversed(rows)])
    ax.set_xlim(0, 1)
    ax.set_xlabel("Proportion of men recovered by end of follow-up")
    ax.axvline(0.5, color="0.85", lw=0.8, zorder=0)
    ax.set_title(title or "Recovery by the end of follow-up")
    fig.text(
        0.01,
        0.005,
        "Squares: observed (exact 95% CI). Diamonds: pooled posterior median and 95% CrI (average study). "
        "Dotted: 95% prediction interval for a new study.",
        fontsize=7,
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def headline(fit) -> dict[str, np.ndarray]:
    """Pooled rate per strategy x population cell with data (the numbers ``make verify`` checks)."""
    post = fit.posterior
    cells = sorted(set(zip(fit.used["strategy"], fit.used["population"], strict=True)))
    return {f"pooled_rate[{s},{p}]": post["cell_rate"].sel(strategy=s, population=p).values.ravel() for s, p in cells}


def report_fit(fit, name: str) -> list:
    """Every table and figure of a success-rate fit."""
    from trt_recovery.report import save_figure
    from trt_recovery.tables import write_table

    observed = observed_rates(fit.used)
    pooled = pooled_table(fit)
    out = write_table(pooled, f"{name}_pooled")
    out += write_table(observed, f"{name}_observed")
    out += write_table(population_shift_table(fit), f"{name}_population_shift")
    out += write_table(fit.exclusions, f"{name}_exclusions")
    out += save_figure(forest_plot(observed, pooled), f"{name}_forest")
    return out
