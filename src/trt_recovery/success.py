"""Results of the binomial analyses (recovery by the end of follow-up, and sperm output kept
during ongoing androgen): observed arm rates, pooled estimates, contrasts, figure and tables.

Every function takes a :class:`trt_recovery.posterior.Fit`; ``report_fit`` and
``report_preservation`` write all outputs and ``headline`` gives the draws ``make verify`` and the
leave-one-study-out analysis check. The two analyses differ only in their words and in the
comparator of their contrasts (:data:`WORDING`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from trt_recovery.forest import cell_evidence, cell_rows, follow_up
from trt_recovery.labels import population_label, strategy_label
from trt_recovery.power_scaling import fit_sensitivity
from trt_recovery.summaries import CI_PROB, flag_columns, interval



#: per analysis kind: the event's name in tables, the figure's axis and title, the comparator
WORDING = {
    "success": {"count": "recovered", "axis": "Proportion of men recovered (to any sperm) by end of follow-up",
                "title": "Recovery by the end of follow-up", "reference": "none",
                "question": "P(a man recovers sperm by the end of follow-up)", "reference_label": "no treatment"},
    "preservation": {"count": "kept_sperm", "axis": "Proportion of men who kept sperm (any) while androgen continued",
                     "title": "Sperm output kept during ongoing androgen", "reference": "continued_trt",
                     "question": "P(a man keeps sperm in the ejaculate while androgen continues)",
                     "reference_label": "androgen alone"},
    "pregnancy": {"count": "pregnancies", "axis": "Proportion with a pregnancy by end of follow-up (the source's denominator)",
                  "title": "Pregnancy after treatment", "reference": "none",
                  "question": "P(pregnancy by the end of follow-up, among the men the source counted)",
                  "reference_label": "no treatment"},
}


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


def pooled_table(fit, seed: int = 0, count: str = "recovered") -> pd.DataFrame:
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
                count: int(sub["events"].sum()),
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


def heterogeneity(fit) -> dict[str, float]:
    """Between-study SD on the logit scale (posterior median and 95% interval): the tau of a
    random-effects meta-analysis."""
    med, lo, hi = interval(fit.posterior["study_sd"])
    return {"tau_median": med, "tau_lower95": lo, "tau_upper95": hi}


def arm_weights(observed: pd.DataFrame, tau: float) -> pd.Series:
    """Approximate weight of each arm within its strategy x population cell, in percent, as a
    random-effects meta-analysis would give it: 1 / (v + tau^2) with v the variance of the arm's
    empirical logit ((k + 0.5) / (n + 1), so that 0 of n and n of n have a finite variance). The
    Bayesian model does not weight arms explicitly; this column shows how much each arm counts."""
    k, n = observed["events"].astype(float), observed["n"].astype(float)
    p = (k + 0.5) / (n + 1.0)
    w = 1.0 / (1.0 / ((n + 1.0) * p * (1 - p)) + tau ** 2)
    cell = observed["strategy"] + "|" + observed["population"]
    return 100.0 * w / w.groupby(cell).transform("sum")


def forest_plot(observed: pd.DataFrame, pooled: pd.DataFrame, title: str = "",
                axis: str = WORDING["success"]["axis"], het: dict[str, float] | None = None) -> plt.Figure:
    """Forest plot in the metafor style: each arm (exact 95% CI) with its estimate [CI] and
    approximate weight in a right-hand column, then its cell's pooled rate (diamond, 95% CrI;
    dotted: 95% prediction interval for a new study); the between-study SD (tau) in the footnote."""
    obs = observed.assign(weight=arm_weights(observed, het["tau_median"]) if het else np.nan)
    rows, colours = cell_rows(
        obs, pooled, lambda r: f"{r.study_id}  {r.events}/{r.n}  ({r.threshold}, {follow_up(r.time_months)})", "pooled"
    )
    fig, ax = plt.subplots(figsize=(10.5, 0.5 * len(rows) + 1.6))
    for y, (kind, label, r) in enumerate(reversed(rows)):
        c = colours[r["cell"]]
        if kind == "arm":
            ax.errorbar(r["rate"], y, xerr=[[r["rate"] - r["lower"]], [r["upper"] - r["rate"]]], fmt="s", color=c, ms=5, capsize=3)
            text = f"{r['rate']:.2f} [{r['lower']:.2f}, {r['upper']:.2f}]"
            if not pd.isna(r.get("weight", np.nan)):
                text += f"   {r['weight']:4.0f}%"
        else:
            ax.plot([r["prediction_lower95"], r["prediction_upper95"]], [y, y], color=c, lw=1, ls=":", label=None)
            m, lo, hi = r["pooled_rate_median"], r["pooled_rate_lower95"], r["pooled_rate_upper95"]
            ax.fill([lo, m, hi, m], [y, y + 0.3, y, y - 0.3], color=c, alpha=0.85)
            text = f"{m:.2f} [{lo:.2f}, {hi:.2f}]"
        ax.annotate(text, xy=(1.02, y), xycoords=("axes fraction", "data"), va="center", fontsize=8,
                    family="monospace", fontweight="bold" if kind == "pooled" else "normal")
    ax.annotate("estimate [95% interval]  weight", xy=(1.02, len(rows) - 0.4), xycoords=("axes fraction", "data"),
                va="bottom", fontsize=8, fontweight="bold")
    ax.set_yticks(range(len(rows)), [label for _, label, _ in reversed(rows)])
    ax.set_ylim(-0.7, len(rows) - 0.1)
    ax.set_xlim(0, 1)
    ax.set_xlabel(axis)
    ax.axvline(0.5, color="0.85", lw=0.8, zorder=0)
    ax.set_title(title or "Recovery by the end of follow-up")
    foot = ("Squares: observed (exact 95% CI). Diamonds: pooled posterior median and 95% CrI (average study).\n"
            "Dotted: 95% prediction interval for a new study. Weight: approximate random-effects weight of the arm in its cell.")
    if het:
        foot += (f"\nBetween-study SD of the logit (tau): {het['tau_median']:.2f} "
                 f"[{het['tau_lower95']:.2f}, {het['tau_upper95']:.2f}], shared by all cells.")
    fig.text(0.01, 0.005, foot, fontsize=7, va="bottom")
    fig.tight_layout(rect=(0, min(0.4, 0.5 / fig.get_figheight()), 0.8, 1))  # room for the three-line footnote
    return fig


def headline(fit) -> dict[str, np.ndarray]:
    """Pooled rate per strategy x population cell with data (the numbers ``make verify`` checks)."""
    post = fit.posterior
    cells = sorted(set(zip(fit.used["strategy"], fit.used["population"], strict=True)))
    return {f"pooled_rate[{s},{p}]": post["cell_rate"].sel(strategy=s, population=p).values.ravel() for s, p in cells}


def contrast_table(fit, reference: str) -> pd.DataFrame:
    """Each strategy with data against ``reference`` (average study, any sperm), in every population
    where the strategy has data: difference in rates, odds ratio and P(strategy better). When the
    reference has no data in a population the contrast rests on the population shift and the
    prior: the ``reference_rows_in_population`` column says so."""
    post = fit.posterior
    used = fit.used
    strategies = list(post["cell_rate"]["strategy"].values)
    if reference not in strategies:
        return pd.DataFrame()
    rows = []
    for (s, p), sub in used.groupby(["strategy", "population"], sort=True):
        if s == reference:
            continue
        diff = post["cell_rate"].sel(strategy=s, population=p) - post["cell_rate"].sel(strategy=reference, population=p)
        log_or = post["strategy_logit"].sel(strategy=s) - post["strategy_logit"].sel(strategy=reference)
        med, lo, hi = interval(diff)
        omed, olo, ohi = interval(np.exp(log_or))
        rows.append({"strategy": s, "strategy_label": strategy_label(s), "population": p,
                     "population_label": population_label(p), "reference": reference,
                     "reference_label": strategy_label(reference), "studies": sub["study_id"].nunique(),
                     "reference_rows_in_population": int(((used.strategy == reference) & (used.population == p)).sum()),
                     "difference_median": med, "difference_lower95": lo, "difference_upper95": hi,
                     "odds_ratio_median": omed, "odds_ratio_lower95": olo, "odds_ratio_upper95": ohi,
                     "p_better": float((diff.values > 0).mean())})
    return pd.DataFrame(rows)


#: columns of a pooled table as a reader sees it (notebook 02); the kind's count column follows "men"
SHOWN_COLUMNS = ("strategy_label", "population_label", "studies", "men", "{count}", "pooled_rate_median",
                 "pooled_rate_lower95", "pooled_rate_upper95", "prediction_lower95", "prediction_upper95",
                 "evidence_flag", "sensitivity_diagnosis")  # the last two: how far the data moved each number


def view(fit, kind: str) -> tuple[pd.DataFrame, pd.DataFrame, plt.Figure, pd.DataFrame]:
    """What a binomial fit shows, worded for its ``kind`` (a key of :data:`WORDING`): the observed
    arms, the pooled table, the forest plot and the pooled table's reader columns."""
    words = WORDING[kind]
    observed = observed_rates(fit.used)
    pooled = pooled_table(fit, count=words["count"])
    figure = forest_plot(observed, pooled, words["title"], words["axis"], heterogeneity(fit))
    shown = [c.format(count=words["count"]) for c in SHOWN_COLUMNS]
    return observed, pooled, figure, pooled[[c for c in shown if c in pooled]]


def _report(fit, name: str, kind: str) -> list:
    from trt_recovery.report import save_figure
    from trt_recovery.tables import write_table

    words = WORDING[kind]
    observed, pooled, figure, _ = view(fit, kind)
    out = write_table(pooled, f"{name}_pooled")
    out += write_table(observed, f"{name}_observed")
    out += write_table(contrast_table(fit, words["reference"]), f"{name}_contrasts")
    out += write_table(population_shift_table(fit), f"{name}_population_shift")
    out += write_table(fit.exclusions, f"{name}_exclusions")
    out += save_figure(figure, f"{name}_forest")
    return out


def report_fit(fit, name: str) -> list:
    """Every table and figure of a success-rate fit."""
    return _report(fit, name, "success")


def report_preservation(fit, name: str) -> list:
    """Every table and figure of a preservation fit (contrasts against androgen alone)."""
    return _report(fit, name, "preservation")


def report_pregnancy(fit, name: str) -> list:
    """Every table and figure of a pregnancy fit (contrasts against spontaneous recovery where it has rows)."""
    return _report(fit, name, "pregnancy")


def cell_answer(fit, strategy: str, population: str, kind: str = "preservation") -> dict:
    """One strategy x population cell as the CLI prints it: the pooled rate (average study) with its
    95% interval and evidence flag, the rows behind it, and the contrast with the comparator.
    A strategy without any data in the fit has no estimate (``estimate`` is None, ``gap`` says why)."""
    words = WORDING[kind]
    used = fit.used
    post = fit.posterior
    out: dict = {"strategy": strategy, "strategy_label": strategy_label(strategy), "population": population,
                 "population_label": population_label(population), "reference": words["reference"]}
    cell = used[(used.strategy == strategy) & (used.population == population)]
    out["evidence"] = [f"{r.study_id}: {int(r.events)}/{int(r.n)} ("
                       + ("" if pd.isna(r.threshold) else f"{r.threshold}, ") + f"{follow_up(r.time_months)})"
                       for r in cell.itertuples()]
    strategies = list(post["cell_rate"]["strategy"].values)
    populations = list(post["cell_rate"]["population"].values)
    if strategy not in strategies or population not in populations:
        where = sorted(set(used.loc[used.strategy == strategy, "population"]))
        out["estimate"] = None
        out["gap"] = (f"no {words['count'].replace('_', ' ')} count for {strategy_label(strategy)} in this analysis"
                      + (f" (data only in: {', '.join(where)})" if where else ": no estimate, an evidence gap"))
        return out
    draws = post["cell_rate"].sel(strategy=strategy, population=population)
    med, lo, hi = interval(draws)
    out["estimate"] = {"median": med, "lower": lo, "upper": hi}
    if len(cell):
        row = pooled_table(fit, count=words["count"]).set_index(["strategy", "population"]).loc[(strategy, population)]
        out["evidence_flag"] = row.get("evidence_flag")
        out["sensitivity_diagnosis"] = row.get("sensitivity_diagnosis")
    else:
        out["evidence_flag"] = "no direct evidence"
        out["sensitivity_diagnosis"] = "no row of this strategy in this population: the population shift and the prior carry it"
    con = contrast_table(fit, words["reference"])
    if len(con):
        c = con[(con.strategy == strategy) & (con.population == population)]
        if len(c):
            c = c.iloc[0]
            out["contrast"] = {"difference": {"median": c.difference_median, "lower": c.difference_lower95,
                                              "upper": c.difference_upper95},
                               "p_better": c.p_better, "reference_rows_in_population": int(c.reference_rows_in_population)}
    return out
