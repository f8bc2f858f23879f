"""What every registered model provides, and the container of a model's prepared data."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pandas as pd
import pymc as pm
import pytensor.tensor as pt


@dataclass
class ModelData:
    """The rows a model uses, the rows it could not use (with reasons), and its coordinates.

    ``used`` is a frame of harmonised rows (one per likelihood term); ``exclusions`` has columns
    ``outcome_id``, ``arm_id``, ``study_id``, ``reason``; ``arms`` is the model's arm table (when
    it has one) and ``terms`` the likelihood-term tables by name.
    """

    used: pd.DataFrame
    exclusions: pd.DataFrame
    coords: dict[str, list[str]] = field(default_factory=dict)
    arms: pd.DataFrame | None = None
    terms: dict[str, pd.DataFrame] = field(default_factory=dict)


def lazy(target: str) -> Callable[..., Any]:
    """A callable that imports ``"package.module:function"`` on first use.

    Model specs name their reporter and headline functions this way, so that registering a model
    does not import plotting code (and the registry stays free of import cycles).
    """
    module, _, name = target.partition(":")

    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.target = target  # type: ignore[attr-defined]
    call.__name__ = name
    return call


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: everything other modules need, so that nothing dispatches on its name.

    ``build(data, priors, predict=None)`` returns the PyMC model; with ``predict`` it also holds
    the model's prediction variables (drawn after sampling through
    :meth:`trt_recovery.posterior.Fit.predictions`). ``headline(fit)`` returns the draws of the
    numbers ``make verify`` and the leave-one-study-out analysis check (name -> flat array);
    ``reporter(fit, name)`` writes the figures and tables of a fit. ``source_modules`` are the
    modules whose code defines the model: their content is the model's identity, recorded in every
    posterior (a posterior whose model code has changed since is refused). ``prior_notes`` says
    what each prior parameter means (shown by ``trt-recovery priors``).
    """

    name: str
    description: str
    default_priors: dict[str, float]
    prepare: Callable[..., ModelData]
    build: Callable[..., pm.Model]
    headline: Callable[..., dict]
    reporter: Callable[..., list]
    source_modules: tuple[str, ...]
    family: str | None = None
    #: prior scales that may be set to 0 (the model then drops that level of variation)
    zero_allowed_priors: tuple[str, ...] = ()
    prior_notes: dict[str, str] = field(default_factory=dict)

    def identity(self) -> str:
        return model_identity(self.name, self.source_modules)


def _code_only(source: str) -> str:
    """The module's syntax tree without docstrings: comments and documentation do not change a model."""
    import ast

    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False)


@lru_cache(maxsize=32)
def model_identity(name: str, modules: tuple[str, ...]) -> str:
    """SHA-256 of the model's name and the code (not the comments or docstrings) of the modules
    that define it."""
    h = hashlib.sha256(name.encode())
    for m in sorted(modules):
        spec = importlib.util.find_spec(m)
        if spec is None or spec.origin is None:
            raise ValueError(f"model {name!r}: source module {m!r} not found")
        with open(spec.origin, encoding="utf-8") as fh:
            h.update(m.encode())
            h.update(_code_only(fh.read()).encode())
    return h.hexdigest()


EXCLUSION_COLUMNS = ["outcome_id", "arm_id", "study_id", "reason"]


def exclusion_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=EXCLUSION_COLUMNS)


def modelled_elsewhere(outcome: str) -> str:
    """The clause an exclusion reason adds when another analysis models the outcome (also when an
    analysis' selection left the row out first, e.g. a pregnancy row, which has no threshold)."""
    if str(outcome).startswith("preserved_"):
        return " (sperm kept during ongoing androgen: the preservation analysis models it)"
    if str(outcome) == "pregnancy":
        return " (pregnancy: the pregnancy analysis models it, see the docstring of binomial_pregnancy)"
    if str(outcome) == "concentration":
        return " (a sperm concentration, not a recovery: the concentration analysis models it)"
    return ""


def select_rows(df: pd.DataFrame, selection, own: tuple[str, ...] = ()) -> tuple[pd.DataFrame, list[dict]]:
    """Apply an analysis' data selection; every row left out gets a reason, which names the
    analysis that models the row's outcome when that is another one (``own``: the outcomes the
    calling model uses)."""
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
        reasons[bad] = [f"no {col} (this analysis selects its rows by {col})" if pd.isna(v) else msg.format(v=v)
                        for v in df.loc[bad, col]]
        keep &= ~bad
    if selection.exclude_designs and "design" in df:
        bad = keep & df["design"].isin(selection.exclude_designs)
        reasons[bad] = [f"study design {v!r} left out by this analysis" for v in df.loc[bad, "design"]]
        keep &= ~bad
    if not selection.include_secondary:
        bad = keep & (df["confidence"] == "secondary")
        reasons[bad] = "value read in a secondary source (excluded by this analysis)"
        keep &= ~bad
    excluded = [
        {"outcome_id": r.outcome_id, "arm_id": r.arm_id, "study_id": r.study_id,
         "reason": reasons[i] + (modelled_elsewhere(r.outcome) if r.outcome not in own else "")}
        for i, r in df[~keep].iterrows()
    ]
    return df[keep].copy(), excluded


def resolve_overlaps(usable: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """Never let the same men enter a model twice, and prefer arms with a single strategy.

    * Subgroups (``parent_arm_id``): when the parent has usable rows, the subgroups' rows are
      excluded; otherwise the subgroups' rows are used instead. Exception: when a usable subgroup
      has a different strategy from its parent (the parent mixes strategies, e.g. treated and
      untreated men reported together), the subgroups are used and the parent's rows excluded.
    * The same men in two studies (``overlaps_arm_id`` names the other study's arm, which holds
      them): when that arm has usable rows, this arm's rows are excluded; otherwise they are used.
    """
    excluded: list[dict] = []

    def drop(mask, reason):
        for _, r in usable[mask].iterrows():
            excluded.append({"outcome_id": r.outcome_id, "arm_id": r.arm_id, "study_id": r.study_id,
                             "reason": reason(r)})
        return usable[~mask].copy()

    child = usable["parent_arm_id"].notna()
    strategy_of = usable.drop_duplicates("arm_id").set_index("arm_id")["strategy"]
    split_parents = {p for p, s in zip(usable.loc[child, "parent_arm_id"], usable.loc[child, "strategy"], strict=True)
                     if p in strategy_of.index and strategy_of[p] != s}
    usable = drop(usable["arm_id"].isin(split_parents),
                  lambda r: f"arm {r.arm_id} mixes strategies; its subgroups with their own strategy are used instead")
    child = usable["parent_arm_id"].notna()
    parents_with_rows = set(usable.loc[~child, "arm_id"])
    usable = drop(child & usable["parent_arm_id"].isin(parents_with_rows),
                  lambda r: f"subgroup of arm {r.parent_arm_id}, which is used (its men would count twice)")
    if "overlaps_arm_id" in usable:
        present = set(usable["arm_id"])
        usable = drop(usable["overlaps_arm_id"].notna() & usable["overlaps_arm_id"].isin(present),
                      lambda r: f"same men as arm {r.overlaps_arm_id} of another study, which is used (counted once)")
    return usable, excluded


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
    """``coords`` without empty optional dimensions (a single population, or no threshold but any
    sperm, has no effect)."""
    return {k: v for k, v in coords.items() if v or k not in ("population_nonref", "threshold_segment", "threshold_free")}


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


def observed_term(name: str, logp: Callable, observed, params: list, weight, dims: str):
    """An observed likelihood term whose log-density is ``weight * logp(value, *params)``.

    ``weight`` (a ``pm.Data`` of ones in a normal fit) lets a refit leave observations out without
    rebuilding or recompiling the model (leave-one-study-out sets a study's weights to 0).
    """
    return pm.CustomDist(
        name, *params, weight,
        logp=lambda value, *args: args[-1] * logp(value, *args[:-1]),
        observed=observed, dims=dims,
    )


def new_study(sd, name: str = "new_study_z", shape: int | None = None):
    """A new study's effect, ``sd * z`` with ``z ~ N(0, 1)``, declared in a prediction block only
    (so it is drawn after sampling, seeded, by ``pm.sample_posterior_predictive``); every model draws
    new-study effects this way."""
    z = pm.Normal(name, 0.0, 1.0, shape=shape)
    return sd * z, z


__all__ = ["ModelData", "ModelSpec", "lazy", "model_identity", "observed_term", "new_study", "pt"]
