"""Harmonisation: the raw extraction tables become one derived table the models consume.

This is the only place where units are converted. Rules:

* times (outcome ``time``, time-valued ``value`` and its dispersion, androgen duration) are
  converted to months: days / 30.4375, weeks * 7 / 30.4375, years * 12;
* percentages become proportions; a proportion with a reported denominator ``n`` also gets a
  count ``events = round(p * n)`` (rounding to the nearest man), flagged ``events_derived``; a
  proportion without ``n`` keeps its printed precision (``printed_decimals``, the fewest decimals
  that reproduce the printed percentage) so that a model can enumerate the denominators it admits;
* recovery thresholds are never converted into one another: ``threshold`` is carried as reported;
* every outcome row ends in exactly one of two tables: the harmonised table, or the exclusion
  report with the reason it cannot be used by any model. Model-specific selections (for example
  the latest time per arm) make their own exclusion reports at fit time.

Arm and study covariates are joined onto every row (population, strategy, androgen preparation,
duration in months, age, baseline sperm status).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trt_recovery.schema import TO_MONTHS
from trt_recovery.validate import Dataset

HARMONISED_COLUMNS = [
    "outcome_id",
    "arm_id",
    "parent_arm_id",
    "overlaps_arm_id",
    "study_id",
    "population",
    "design",
    "strategy",
    "serm_agent",
    "androgen_preparation",
    "androgen_duration_months",
    "age_years",
    "baseline_sperm_status",
    "n_azoospermic",
    "time_zero",
    "arm_n",
    "outcome",
    "threshold",
    "time_months",
    "time_stat",
    "n",
    "events",
    "events_derived",
    "proportion",
    "printed_decimals",
    "value",
    "value_unit",
    "statistic",
    "over",
    "dispersion_type",
    "dispersion_value",
    "lower",
    "upper",
    "confidence",
    "source_ref",
    "source_location",
]


@dataclass
class Harmonised:
    """The derived outcome table and the rows that could not enter it."""

    outcomes: pd.DataFrame
    exclusions: pd.DataFrame


def printed_decimals(percent: float) -> int:
    """The fewest decimals (0-4) that reproduce a printed percentage (64.8 -> 1, 65 -> 0)."""
    for d in range(5):
        if abs(round(float(percent), d) - float(percent)) < 1e-9:
            return d
    return 4


def to_months(value: float | None, unit: str | None) -> float:
    """Convert a time to months (NaN when either part is missing)."""
    if value is None or pd.isna(value) or unit is None or pd.isna(unit):
        return float("nan")
    return float(value) * TO_MONTHS[str(unit)]


#: 97.5% point of the standard normal (a 95% interval is mean +/- Z95 standard errors)
Z95 = 1.959963984540054


def mean_standard_error(kind, value, lower, upper, n) -> tuple[float, str]:
    """Standard error of a reported mean from its dispersion (``dispersion_type`` ``kind``):
    a reported SE, a 95% confidence interval (width / (2 x 1.96)), or an SD over the square root
    of ``n``. Returns ``(se, what was used)``; ``se`` is NaN when none of these is reported."""
    if kind == "se" and not pd.isna(value):
        return float(value), "reported SE"
    if kind == "ci95" and not pd.isna(lower) and not pd.isna(upper):
        return float(upper - lower) / (2 * Z95), "95% confidence interval of the mean"
    if kind == "sd" and not pd.isna(value) and not pd.isna(n) and float(n) > 0:
        return float(value) / np.sqrt(float(n)), "SD over the square root of n"
    return np.nan, "no SE, 95% confidence interval, or SD with n"


def _exclusion_reason(r: pd.Series, study_dup: bool) -> str | None:
    if study_dup:
        return "study is a duplicate report of another study"
    kind = r["outcome"]
    if kind == "prevalence_proportion":
        return ("point prevalence at a time (men already above the threshold at time zero included): neither a "
                "cumulative recovery nor sperm kept, so no model has a term for it")
    if kind == "concentration" and pd.isna(r["n"]) and pd.isna(r["arm_n"]):
        return "concentration without a number of men"
    return None


def harmonise(ds: Dataset) -> Harmonised:
    """Build the harmonised outcome table and the exclusion report from a validated dataset."""
    studies = ds.studies.set_index("study_id")
    arms = ds.arms.merge(
        ds.studies[["study_id", "population", "design", "duplicate_of"]], on="study_id", how="left", validate="many_to_one"
    )
    arms["androgen_duration_months"] = [
        to_months(v, u) for v, u in zip(arms["androgen_duration_value"], arms["androgen_duration_unit"], strict=True)
    ]
    arm_cols = [
        "arm_id",
        "parent_arm_id",
        "overlaps_arm_id",
        "study_id",
        "population",
        "design",
        "strategy",
        "serm_agent",
        "androgen_preparation",
        "androgen_duration_months",
        "age_value",
        "baseline_sperm_status",
        "n_azoospermic",
        "time_zero",
        "n",
    ]
    merged = ds.outcomes.merge(
        arms[arm_cols].rename(columns={"n": "arm_n", "age_value": "age_years"}),
        on="arm_id",
        how="left",
        validate="many_to_one",
    )
    rows, excluded = [], []
    for _, r in merged.iterrows():
        dup = not pd.isna(studies.loc[r["study_id"], "duplicate_of"])
        reason = _exclusion_reason(r, dup)
        if reason:
            excluded.append({"outcome_id": r["outcome_id"], "arm_id": r["arm_id"], "study_id": r["study_id"], "reason": reason})
            continue
        out = {c: r[c] for c in HARMONISED_COLUMNS if c in r.index}
        out["time_months"] = to_months(r["time"], r["time_unit"])
        value, unit = r["value"], r["value_unit"]
        lower, upper, disp = r["lower"], r["upper"], r["dispersion_value"]
        if not pd.isna(unit) and unit in TO_MONTHS:
            f = TO_MONTHS[unit]
            value, lower, upper, disp = (x * f if not pd.isna(x) else x for x in (value, lower, upper, disp))
            unit = "months"
        proportion = np.nan
        events = r["events"]
        events_derived = False
        decimals = np.nan
        if r["outcome"] in ("cumulative_proportion", "km_point", "preserved_proportion"):
            proportion = r["value"] / 100.0 if r["statistic"] == "percent" else r["value"]
            decimals = printed_decimals(r["value"] if r["statistic"] == "percent" else 100 * r["value"])
            if pd.isna(events) and not pd.isna(r["n"]):
                events = int(round(proportion * int(r["n"])))
                events_derived = True
            unit = "proportion"
            value = proportion
        elif r["outcome"] in ("recovered_count", "preserved_count", "pregnancy") and not pd.isna(r["n"]):
            proportion = int(events) / int(r["n"]) if int(r["n"]) > 0 else np.nan
        out.update(
            value=value,
            value_unit=unit,
            lower=lower,
            upper=upper,
            dispersion_value=disp,
            events=events,
            events_derived=events_derived,
            proportion=proportion,
            printed_decimals=decimals,
        )
        rows.append(out)
    outcomes = pd.DataFrame(rows, columns=HARMONISED_COLUMNS)
    for col in ("n", "events", "arm_n", "n_azoospermic"):
        outcomes[col] = pd.array(outcomes[col], dtype="Int64")
    exclusions = pd.DataFrame(excluded, columns=["outcome_id", "arm_id", "study_id", "reason"])
    return Harmonised(outcomes=outcomes, exclusions=exclusions)
