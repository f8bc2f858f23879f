"""What every registered model provides, and the container of a model's prepared data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import pymc as pm
import pytensor.tensor as pt


@dataclass
class ModelData:
    """The rows a model uses, the rows it could not use (with reasons), and its coordinates.

    ``used`` is a frame of harmonised rows (one per likelihood term); ``exclusions`` has columns
    ``outcome_id``, ``arm_id``, ``study_id``, ``reason``.
    """

    used: pd.DataFrame
    exclusions: pd.DataFrame
    coords: dict[str, list[str]] = field(default_factory=dict)
    arms: pd.DataFrame | None = None
    terms: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    """A registered model. A changed likelihood or prior family is a new name."""

    name: str
    description: str
    default_priors: dict[str, float]
    prepare: Callable[..., ModelData]
    build: Callable[[ModelData, dict[str, float]], pm.Model]
    summary_vars: tuple[str, ...]
    #: prior scales that may be set to 0 (the model then drops that level of variation)
    zero_allowed_priors: tuple[str, ...] = ()


EXCLUSION_COLUMNS = ["outcome_id", "arm_id", "study_id", "reason"]


def exclusion_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=EXCLUSION_COLUMNS)


def select_rows(df: pd.DataFrame, selection) -> tuple[pd.DataFrame, list[dict]]:
    """Apply an analysis' data selection; every row left out gets a reason."""
    keep = pd.Series(True, index=df.index)
    reasons = pd.Series("", index=df.index, dtype=object)
    rules = [
        ("population", selection.populations, "population {v!r} not in this analysis"),
        ("strategy", selection.strategies, "strategy {v!r} not in this analysis"),
        ("threshold", selection.thresholds, "threshold {v!r} not in this analysis"),
    ]
    for col, allowed, msg in rules:
        if allowed is None:
            continue
        bad = keep & ~df[col].isin(allowed)
        reasons[bad] = [msg.format(v=v) for v in df.loc[bad, col]]
        keep &= ~bad
    if not selection.include_secondary:
        bad = keep & (df["confidence"] == "secondary")
        reasons[bad] = "value read in a secondary source (excluded by this analysis)"
        keep &= ~bad
    excluded = [
        {"outcome_id": r.outcome_id, "arm_id": r.arm_id, "study_id": r.study_id, "reason": reasons[i]}
        for i, r in df[~keep].iterrows()
    ]
    return df[keep].copy(), excluded


def resolve_overlaps(usable: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """Never let the same men enter a model twice through an arm and its subgroups.

    For each arm with subgroup arms (``parent_arm_id``): when the parent has usable rows, the
    subgroups' rows are excluded; otherwise the subgroups' rows are used instead.
    """
    excluded: list[dict] = []
    child = usable["parent_arm_id"].notna()
    parents_with_rows = set(usable.loc[~child, "arm_id"])
    drop = child & usable["parent_arm_id"].isin(parents_with_rows)
    for _, r in usable[drop].iterrows():
        excluded.append(
            {
                "outcome_id": r.outcome_id,
                "arm_id": r.arm_id,
                "study_id": r.study_id,
                "reason": f"subgroup of arm {r.parent_arm_id}, which is used (its men would count twice)",
            }
        )
    return usable[~drop].copy(), excluded


#: Population whose effect is fixed at 0 in models with a population term (when the data have it).
REFERENCE_POPULATION = "trt"


def arm_coords(used: pd.DataFrame) -> dict[str, list[str]]:
    """Coordinates of a one-row-per-arm model: arms, studies, strategies and populations.

    ``population`` starts with the reference population (``trt`` when present, else the first
    in alphabetical order); ``population_nonref`` holds the others (the ones with an effect).
    """
    pops = sorted(used["population"].unique().tolist())
    if REFERENCE_POPULATION in pops:
        pops = [REFERENCE_POPULATION] + [p for p in pops if p != REFERENCE_POPULATION]
    return {
        "arm": used["arm_id"].tolist(),
        "study": sorted(used["study_id"].unique().tolist()),
        "strategy": sorted(used["strategy"].unique().tolist()),
        "population": pops,
        "population_nonref": pops[1:],
    }


def pymc_coords(coords: dict[str, list[str]]) -> dict[str, list[str]]:
    """``coords`` without an empty ``population_nonref`` (a single population has no effect)."""
    return {k: v for k, v in coords.items() if k != "population_nonref" or v}


def one_row_per_arm(cand: pd.DataFrame, by: list[str], ascending: list[bool], why: str) -> tuple[pd.DataFrame, list[dict]]:
    """Keep the first row of each arm after sorting by ``by``; every other row is excluded with
    the reason 'arm already contributes <outcome_id> (<why>)'."""
    cand = cand.sort_values(["arm_id", *by], ascending=[True, *ascending])
    chosen = cand.groupby("arm_id", sort=True).head(1)
    kept = chosen.set_index("arm_id")["outcome_id"]
    excluded = [
        {"outcome_id": r.outcome_id, "arm_id": r.arm_id, "study_id": r.study_id,
         "reason": f"arm already contributes {kept[r.arm_id]} ({why})"}
        for r in cand.drop(chosen.index).itertuples()
    ]
    return chosen, excluded


def population_shift(name: str, prior_sd: float, coords: dict[str, list[str]]):
    """Population effects with the reference fixed at 0, inside a model context.

    Adds ``name ~ Normal(0, prior_sd)`` over ``population_nonref`` (when there is more than one
    population) and the Deterministic ``population_shift`` over ``population``; returns the
    latter as a tensor indexed like ``coords["population"]``.
    """
    if coords["population_nonref"]:
        effect = pm.Normal(name, 0.0, prior_sd, dims="population_nonref")
        shift = pt.concatenate([pt.zeros(1), effect])
    else:
        shift = pt.zeros(1)
    return pm.Deterministic("population_shift", shift, dims="population")
