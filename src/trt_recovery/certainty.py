"""Certainty of evidence, GRADE-style, computed from the data and the fits (never typed in).

Each summary-of-findings row answers a prognostic question: in men of a target population (TRT
or AAS users) who stop and follow strategy X, what share recover (or what concentration do they
reach)? The estimate is the fitted model's average-study prediction for that strategy and
population; the evidence behind it is every used row of that strategy (the models borrow across
populations through a population shift). Certainty starts at ``start`` (GRADE for prognosis,
Iorio et al. 2015) and each domain moves it down by 0, 1 or 2 levels:

* **risk of bias**: the men-weighted mean concern of the study designs (``design_concern``);
* **inconsistency**: with at least ``min_studies`` studies, the share of the new-study prediction
  interval's width that the average-study interval does not explain,
  :math:`1 - w_{\\text{avg}}/w_{\\text{new}}`; with fewer it is not assessable (no downgrade);
* **indirectness**: per arm, the larger of the population's concern for the target population and
  the concern of a threshold other than "any sperm", men-weighted;
* **imprecision**: how many decision thresholds the 95% interval spans; a number flagged "mostly
  prior" is very imprecise whatever its width;
* **publication bias**: suspected when case reports carry the cell or it has very few men.

Men-weighting uses each arm's size; an arm of unknown size counts as the median known arm size
of the cell (1 when none is known). Every threshold is in ``analysis/certainty/rules.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from trt_recovery import paths
from trt_recovery.labels import population_label, strategy_label
from trt_recovery.schema import load_schema
from trt_recovery.summaries import flag_columns, interval

DOMAINS = ("risk_of_bias", "inconsistency", "indirectness", "imprecision", "publication_bias")
SEVERITY = {0: "not serious", 1: "serious", 2: "very serious"}


@dataclass(frozen=True)
class Rules:
    """The rating rules (``analysis/certainty/rules.yaml``)."""

    raw: dict[str, Any]

    @property
    def levels(self) -> list[str]:
        return list(self.raw["levels"])

    @property
    def target_populations(self) -> list[str]:
        return list(self.raw["target_populations"])


def load_rules(path: Path | None = None) -> Rules:
    path = path or paths.CERTAINTY_RULES
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    missing = [k for k in ("start", "levels", "target_populations", *DOMAINS) if k not in raw]
    if missing:
        raise ValueError(f"{path}: missing keys {missing}")
    if raw["start"] not in raw["levels"]:
        raise ValueError(f"{path}: start {raw['start']!r} is not one of levels {raw['levels']}")
    return Rules(raw)


def _weights(arms: pd.DataFrame) -> np.ndarray:
    n = (pd.to_numeric(arms["arm_n"], errors="coerce").astype(float) if "arm_n" in arms
         else pd.Series(np.nan, index=arms.index))  # float: an Int64 column cannot take a median like 13.5
    fill = float(n.median()) if n.notna().any() else 1.0
    return n.fillna(fill).clip(lower=1).to_numpy(float)


def _weighted_level(values: np.ndarray, weights: np.ndarray) -> int:
    if not len(values):
        return 0
    return int(min(2, np.floor(np.average(values, weights=weights) + 0.5)))


def rate(rows: pd.DataFrame, target: str, estimate: tuple[float, float, float], new_study: tuple[float, float],
         flag: str, scale: str, rules: Rules | None = None) -> dict[str, Any]:
    """Rate one summary-of-findings cell.

    Parameters
    ----------
    rows : DataFrame
        The used rows behind the estimate (columns ``arm_id``, ``study_id``, ``design``,
        ``population``, ``threshold``, ``arm_n``).
    target : str
        Target population of the question.
    estimate : (median, lower, upper)
        Average-study estimate with its 95% interval.
    new_study : (lower, upper)
        95% prediction interval of a new study.
    flag : str
        Evidence flag of the estimate (:func:`trt_recovery.summaries.evidence_flag`).
    scale : {"probability", "concentration"}
        Which decision thresholds apply.

    Returns
    -------
    dict with each domain's level (0-2) and words, the certainty, and the reasons in words.
    """
    rules = rules or load_rules()
    r = rules.raw
    arms = rows.drop_duplicates("arm_id")
    w = _weights(arms)
    studies = rows["study_id"].nunique()
    reasons = []

    concern = arms["design"].map(r["risk_of_bias"]["design_concern"]).fillna(1).to_numpy(float)
    rob = _weighted_level(concern, w)
    if rob:
        share = float(np.sum(w[concern > 0]) / np.sum(w))
        reasons.append(f"risk of bias: {share:.0%} of men from retrospective or uncontrolled designs")

    inc_rule = r["inconsistency"]
    if studies < inc_rule["min_studies"]:
        inc, inc_words = 0, "not assessable (one study)"
    else:
        w_avg, w_new = estimate[2] - estimate[1], new_study[1] - new_study[0]
        if scale == "concentration":
            w_avg = np.log(estimate[2]) - np.log(estimate[1])
            w_new = np.log(new_study[1]) - np.log(new_study[0])
        share = 1 - w_avg / w_new if w_new > 0 else 0.0
        inc = 2 if share >= inc_rule["very_serious_share"] else 1 if share >= inc_rule["serious_share"] else 0
        inc_words = SEVERITY[inc]
        if inc:
            reasons.append(f"inconsistency: between-study spread makes up {share:.0%} of the prediction interval")

    ind_rule = r["indirectness"]
    pop_concern = arms["population"].map(ind_rule["population"][target]).fillna(2).to_numpy(float)
    thr = arms["threshold"] if "threshold" in arms else pd.Series(np.nan, index=arms.index)
    thr_concern = np.where(thr.notna() & (thr.astype(str) != "any"), ind_rule["other_threshold_concern"], 0)
    ind = _weighted_level(np.maximum(pop_concern, thr_concern), w)
    if ind:
        other = sorted(set(arms.loc[pop_concern > 0, "population"]))
        parts = []
        if other:
            parts.append(f"men from {', '.join(population_label(p) for p in other)}")
        if np.any(thr_concern > 0):
            parts.append("recovery defined above 'any sperm'")
        reasons.append(f"indirectness: {'; '.join(parts)}")

    thresholds = r["imprecision"]["thresholds"][scale]
    spanned = sum(1 for t in thresholds if estimate[1] < t < estimate[2])
    imp = min(2, spanned)
    if flag == "mostly prior":
        imp = max(imp, int(r["imprecision"]["mostly_prior_levels"]))
        reasons.append("imprecision: the data did not move this number from its prior")
    elif imp:
        reasons.append(f"imprecision: 95% interval spans {spanned} decision threshold(s) ({', '.join(map(str, thresholds))})")

    pb = r["publication_bias"]
    cr_share = float(np.sum(w[(arms["design"] == "case_report").to_numpy()]) / np.sum(w))
    men = float(np.sum(w))
    pub = int(cr_share >= pb["case_report_share"] or men < pb["min_men"])
    if pub:
        reasons.append("publication bias suspected: " + ("case reports carry the cell" if cr_share >= pb["case_report_share"]
                                                          else f"fewer than {pb['min_men']} men"))

    levels = rules.levels
    total = rob + inc + ind + imp + pub
    certainty = levels[max(0, levels.index(r["start"]) - total)]
    return {"risk_of_bias": SEVERITY[rob], "inconsistency": inc_words, "indirectness": SEVERITY[ind],
            "imprecision": SEVERITY[imp], "publication_bias": "suspected" if pub else "undetected",
            "downgrades": total, "certainty": certainty, "reasons": "; ".join(reasons)}


# ------------------------------------------------------------------------------------------------
# The summary-of-findings table


#: Outcome rows of the table: analysis, label, scale.
OUTCOMES = {
    "recovered_12m": ("survival", "Sperm back (any) by 12 months, % of men", "probability"),
    "pooled_rate": ("success_rate", "Recovered (any sperm) by end of follow-up, % of men", "probability"),
    "kept_sperm": ("preservation", "Kept sperm (any) while androgen continued, % of men", "probability"),
    "pregnancies": ("pregnancy", "Pregnancy by end of follow-up, % (each source's denominator)", "probability"),
    "concentration": ("concentration", "Median sperm concentration reached, million/mL", "concentration"),
}


def _cells_survival(fit, target: str, strategies: list[str]):
    from trt_recovery.survival import predict as P

    profiles = [P.Profile(strategy=s, population=target, threshold="any") for s in strategies]
    pred = P.Predictions(fit, profiles)
    prior = P.Predictions(fit, profiles, group="prior")
    avg = pred.recovered_by([12.0]).isel(time=0)
    new = pred.recovered_by([12.0], new_study=True).isel(time=0)
    pri = prior.recovered_by([12.0]).isel(time=0)
    return {s: (avg.isel(profile=i), new.isel(profile=i), pri.isel(profile=i)) for i, s in enumerate(strategies)}


def _cells_grid(fit, target: str, strategies: list[str], avg_var: str, new_var: str, pred_vars):
    post = fit.posterior.merge(fit.predictions(list(pred_vars), seed=0))
    out = {}
    for s in strategies:
        sel = {"strategy": s, "population": target}
        out[s] = (post[avg_var].sel(sel), post[new_var].sel(sel), fit.prior[avg_var].sel(sel))
    return out


def summary_of_findings(fits: dict[str, Any], rules: Rules | None = None) -> pd.DataFrame:
    """One row per outcome x target population x strategy with used rows: the estimate, the
    evidence behind it, each GRADE domain and the certainty.

    ``fits`` maps an analysis name (``survival``, ``success_rate``, ``preservation``,
    ``pregnancy``, ``concentration``) to its fit;
    outcomes whose fit is missing are skipped.
    """
    from trt_recovery.models.binomial_success import PREDICTION_VARS as SUCCESS_PRED
    from trt_recovery.models.lognormal_concentration import PREDICTION_VARS as CONC_PRED
    from trt_recovery.power_scaling import fit_sensitivity

    rules = rules or load_rules()
    rows, skipped = [], []
    for outcome, (analysis, label, scale) in OUTCOMES.items():
        fit = fits.get(analysis)
        if fit is None or fit.used.empty:
            continue
        used = fit.used
        strategies = [s for s in dict.fromkeys(used["strategy"])]
        for target in rules.target_populations:
            pops = fit.posterior.coords.get("population")
            if outcome != "recovered_12m" and (pops is None or target not in set(map(str, pops.values))):
                skipped.append(f"{outcome} for {target}: the '{analysis}' fit has no {target} arms, so no population shift")
                continue
            if outcome == "recovered_12m":
                cells = _cells_survival(fit, target, strategies)
            elif outcome in ("pooled_rate", "kept_sperm", "pregnancies"):
                cells = _cells_grid(fit, target, strategies, "cell_rate", "cell_predicted_rate", SUCCESS_PRED)
            else:
                cells = _cells_grid(fit, target, strategies, "median_concentration", "predicted_median", CONC_PRED)
            tr = (lambda x: np.log(x)) if scale == "concentration" else (lambda x: x)
            sens = fit_sensitivity(fit, {s: tr(c[0]) for s, c in cells.items()})
            for s in strategies:
                avg, new, pri = cells[s]
                est, nst = interval(avg), interval(new)
                flags = flag_columns(np.asarray(tr(pri)), np.asarray(tr(avg)), None if sens is None else sens.loc[s])
                sub = used[used["strategy"] == s]
                arms = sub.drop_duplicates("arm_id")
                rating = rate(sub, target, est, (nst[1], nst[2]), flags["evidence_flag"], scale, rules)
                mult = 100.0 if scale == "probability" else 1.0
                rows.append({
                    "outcome": outcome, "outcome_label": label, "target_population": target,
                    "target_population_label": population_label(target),
                    "strategy": s, "strategy_label": strategy_label(s),
                    "studies": sub["study_id"].nunique(), "arms": len(arms),
                    "men": int(pd.to_numeric(arms["arm_n"], errors="coerce").fillna(0).sum()),
                    "evidence_populations": ", ".join(sorted(set(arms["population"]))),
                    "designs": ", ".join(sorted(set(arms["design"]))),
                    "estimate": est[0] * mult, "lower95": est[1] * mult, "upper95": est[2] * mult,
                    "new_study_lower95": nst[1] * mult, "new_study_upper95": nst[2] * mult,
                    "evidence_flag": flags["evidence_flag"], **rating,
                })
    out = pd.DataFrame(rows)
    if len(out):
        order = {s: i for i, s in enumerate(load_schema().terms("strategy"))}
        out = out.sort_values(["outcome", "target_population", "strategy"], kind="stable",
                              key=lambda c: c.map(order) if c.name == "strategy" else c.map(
                                  {k: i for i, k in enumerate(OUTCOMES)}) if c.name == "outcome" else c.map(
                                  {k: i for i, k in enumerate(rules.target_populations)}),
                              ignore_index=True)
    out.attrs["skipped"] = skipped
    return out


def certainty_lookup(sof: pd.DataFrame, outcome: str, target: str) -> dict[str, str]:
    """strategy -> certainty for one outcome and target population (for a main table's column)."""
    sub = sof[(sof["outcome"] == outcome) & (sof["target_population"] == target)]
    return dict(zip(sub["strategy"], sub["certainty"], strict=True))


def main(analyses: tuple[str, ...] = ("survival", "success_rate", "preservation", "pregnancy", "concentration")) -> list[Path]:
    """Write the summary-of-findings table (CSV, Markdown, LaTeX) from the cached main fits."""
    from trt_recovery.posterior import load_fit
    from trt_recovery.tables import write_table

    fits = {}
    for a in analyses:
        if paths.posterior_file(a).exists():
            fits[a] = load_fit(a)
    sof = summary_of_findings(fits)
    for note in sof.attrs.get("skipped", []):
        print(f"summary of findings: no row for {note}")
    return write_table(sof, "summary_of_findings", float_format="{:.3g}")
