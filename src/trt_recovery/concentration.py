"""Results of the concentration analysis: what each arm reported, pooled estimates, a figure.

The model (:mod:`trt_recovery.models.lognormal_concentration`) works with each arm's summary in
its own format; this module only presents them. Pooled numbers are posterior medians with 95%
equal-tailed intervals, for every strategy x population cell that has at least one arm.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from trt_recovery.forest import cell_evidence, cell_rows, follow_up
from trt_recovery.power_scaling import fit_sensitivity
from trt_recovery.summaries import flag_columns, interval



def observed_table(used: pd.DataFrame) -> pd.DataFrame:
    """One row per arm: the reported summary and, where it allows, a 95% interval for it.

    The interval is the reported one when there is one (IQR and range are shown as reported,
    they are not confidence intervals) or mean +/- 1.96 SD/sqrt(n) for a mean with an SD.
    """
    rows = []
    for r in used.itertuples():
        lo = hi = np.nan
        spread = ""
        if r.statistic == "mean" and not pd.isna(r.sd):
            half = stats.norm.ppf(0.975) * r.sd / math.sqrt(r.size)
            lo, hi, spread = max(r.value - half, 0.0), r.value + half, "95% CI of the mean (from SD)"
        elif not pd.isna(r.q1):
            lo, hi, spread = r.q1, r.q3, "IQR"
        elif not pd.isna(r.min):
            lo, hi, spread = r.min, r.max, "range"
        rows.append(
            {
                "arm_id": r.arm_id,
                "study_id": r.study_id,
                "population": r.population,
                "strategy": r.strategy,
                "time_months": r.time_months,
                "n": int(r.size),
                "statistic": r.statistic,
                "value": r.value,
                "spread": spread,
                "lower": lo,
                "upper": hi,
                "dispersion_used": r.dispersion_used,
                "source_location": r.source_location,
            }
        )
    return pd.DataFrame(rows)


def pooled_table(fit, seed: int = 0) -> pd.DataFrame:
    """Per strategy x population cell with data: evidence, median and mean concentration
    (average study) and the 95% prediction interval of a new study's median (million/mL; the new
    study's effect drawn with ``seed``)."""
    from trt_recovery.models.lognormal_concentration import PREDICTION_VARS

    post = fit.posterior.merge(fit.predictions(list(PREDICTION_VARS), seed=seed))
    used = fit.used
    has_prior = "prior" in fit.tree.children
    cells = list(used.groupby(["strategy", "population"], sort=True))
    sens = fit_sensitivity(fit, {f"{s}|{p}": np.log(post["median_concentration"].sel(strategy=s, population=p))
                                 for (s, p), _ in cells})
    rows = []
    for (s, p), sub in cells:
        sel = {"strategy": s, "population": p}
        med = interval(post["median_concentration"].sel(sel))
        mean = interval(post["mean_concentration"].sel(sel))
        pred = interval(post["predicted_median"].sel(sel))
        rows.append(
            {
                **cell_evidence(s, p, sub, "size"),
                "median_conc": med[0],
                "median_conc_lower95": med[1],
                "median_conc_upper95": med[2],
                "mean_conc": mean[0],
                "mean_conc_lower95": mean[1],
                "mean_conc_upper95": mean[2],
                "new_study_median_lower95": pred[1],
                "new_study_median_upper95": pred[2],
                # on the log scale, where the prior and posterior are nearly normal
                **(flag_columns(np.log(fit.prior["median_concentration"].sel(sel).values),
                                np.log(post["median_concentration"].sel(sel).values),
                                None if sens is None else sens.loc[f"{s}|{p}"]) if has_prior else {}),
            }
        )
    return pd.DataFrame(rows)


def spread_table(fit) -> pd.DataFrame:
    """Between-study SD of log medians and the typical within-arm log-SD, with 95% intervals."""
    post = fit.posterior
    rows = []
    for name, da, meaning in [
        ("study_sd", post["study_sd"], "between-study SD of log median concentration"),
        ("within_arm_log_sd", np.exp(post["log_sigma_mean"]), "typical SD of log concentration between men of one arm"),
    ]:
        q = interval(da)
        rows.append({"quantity": name, "meaning": meaning, "median": q[0], "lower95": q[1], "upper95": q[2]})
    return pd.DataFrame(rows)


def forest_plot(observed: pd.DataFrame, pooled: pd.DataFrame, title: str = "",
                het: tuple[float, float, float] | None = None) -> plt.Figure:
    """Observed arm summaries (circles: means, squares: medians) and pooled medians (diamonds), in
    the metafor style: each row's estimate [interval] in a right-hand column, and the between-study
    SD of the log median (tau, ``het`` = median, lower, upper) in the footnote."""
    rows, colours = cell_rows(
        observed, pooled,
        lambda r: f"{r.study_id}  {r.statistic} {r.value:g}, n={r.n} ({follow_up(r.time_months)})", "pooled median",
    )
    fig, ax = plt.subplots(figsize=(11, 0.55 * len(rows) + 1.8))
    for y, (kind, _, r) in enumerate(reversed(rows)):
        c = colours[r["cell"]]
        if kind == "arm":
            marker = "o" if r["statistic"] == "mean" else "s"
            ax.plot(r["value"], y, marker, color=c, ms=6)
            has_interval = not pd.isna(r["lower"]) and r["lower"] > 0
            if has_interval:
                ax.plot([r["lower"], r["upper"]], [y, y], color=c, lw=1.2)
            text = f"{r['statistic']} {r['value']:.3g}" + (f" [{r['lower']:.3g}, {r['upper']:.3g}]" if has_interval else "")
        else:
            ax.plot([r["new_study_median_lower95"], r["new_study_median_upper95"]], [y, y], color=c, lw=1, ls=":")
            m, lo, hi = r["median_conc"], r["median_conc_lower95"], r["median_conc_upper95"]
            ax.fill([lo, m, hi, m], [y, y + 0.3, y, y - 0.3], color=c, alpha=0.85)
            text = f"{m:.3g} [{lo:.3g}, {hi:.3g}]"
        ax.annotate(text, xy=(1.02, y), xycoords=("axes fraction", "data"), va="center", fontsize=8,
                    family="monospace", fontweight="bold" if kind == "pooled" else "normal")
    ax.annotate("estimate [interval]", xy=(1.02, len(rows) - 0.4), xycoords=("axes fraction", "data"),
                va="bottom", fontsize=8, fontweight="bold")
    ax.set_xscale("log")
    ax.set_yticks(range(len(rows)), [label for _, label, _ in reversed(rows)])
    ax.set_ylim(-0.7, len(rows) - 0.1)
    for ref in (1, 5, 15):
        ax.axvline(ref, color="0.85", lw=0.8, zorder=0)
    ax.set_xlabel("Sperm concentration (million/mL, log scale)")
    ax.set_title(title or "Sperm concentration reached after stopping")
    foot = ("Circles: reported means; squares: reported medians (lines: 95% CI of a mean, IQR or range as reported).\n"
            "Diamonds: pooled median, 95% CrI (average study); dotted: 95% prediction interval (new study). "
            "Grey lines: 1, 5 and 15 million/mL.")
    if het is not None:
        foot += f"\nBetween-study SD of the log median (tau): {het[0]:.2f} [{het[1]:.2f}, {het[2]:.2f}]."
    fig.text(0.01, 0.005, foot, fontsize=6.5, va="bottom")
    fig.tight_layout(rect=(0, min(0.4, 0.5 / fig.get_figheight()), 0.8, 1))  # room for the three-line footnote
    return fig


def headline(fit) -> dict[str, np.ndarray]:
    """Log pooled median concentration per strategy x population cell with data."""
    post = fit.posterior
    cells = sorted(set(zip(fit.used["strategy"], fit.used["population"], strict=True)))
    return {
        f"log_median_conc[{s},{p}]": np.log(post["median_concentration"].sel(strategy=s, population=p).values.ravel())
        for s, p in cells
    }


def report_fit(fit, name: str) -> list:
    """Every table and figure of a concentration fit."""
    from trt_recovery.report import save_figure
    from trt_recovery.tables import write_table

    observed = observed_table(fit.used)
    pooled = pooled_table(fit)
    out = write_table(pooled, f"{name}_pooled", float_format="{:.3g}")
    out += write_table(observed, f"{name}_observed", float_format="{:.3g}")
    out += write_table(spread_table(fit), f"{name}_spread", float_format="{:.3g}")
    out += write_table(fit.exclusions, f"{name}_exclusions")
    out += save_figure(forest_plot(observed, pooled, het=interval(fit.posterior["study_sd"])), f"{name}_forest")
    return out
