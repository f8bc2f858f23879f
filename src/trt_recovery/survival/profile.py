"""Who and what to predict for: a :class:`Profile` of the survival model, checked against the
schema's vocabularies and the covariates' bounds.

This module imports only numpy and the schema, so the command line checks a profile (and answers it
from a precomputed bundle, :mod:`trt_recovery.survival.calculator`) before the sampler stack loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from trt_recovery.schema import load_schema
from trt_recovery.survival import design


class ProfileError(ValueError):
    """A profile names something the model does not know, or an impossible value."""


@dataclass(frozen=True)
class Profile:
    """Who and what to predict for. ``covariates`` maps a covariate name of
    :data:`~trt_recovery.survival.design.COVARIATES` to a value in raw units (None: population average)."""

    strategy: str = "none"
    population: str = "trt"
    threshold: str = "any"
    preparation: str | None = None
    covariates: Mapping[str, float | None] = field(default_factory=dict)

    def check(self) -> None:
        schema = load_schema()
        for name, vocab in (("strategy", "strategy"), ("population", "population"), ("threshold", "threshold")):
            v = getattr(self, name)
            if v not in schema.terms(vocab):
                raise ProfileError(f"unknown {name} {v!r} (valid: {', '.join(schema.terms(vocab))})")
        preps = design.FACTOR["preparation"].all_levels()
        if self.preparation is not None and self.preparation not in preps:
            raise ProfileError(f"unknown preparation {self.preparation!r} (valid: {', '.join(preps)})")
        for name, value in self.covariates.items():
            if name not in design.COVARIATE:
                raise ProfileError(f"unknown covariate {name!r} (valid: {', '.join(design.COVARIATE)})")
            lo, hi = design.COVARIATE[name].bounds
            if value is not None and not (np.isfinite(value) and lo <= value <= hi):
                raise ProfileError(f"{design.COVARIATE[name].label} must be in [{lo:g}, {hi:g}], got {value}")
            if value is not None:
                with np.errstate(divide="ignore", invalid="ignore"):
                    on_model_scale = design.COVARIATE[name].to_model(np.array(float(value)))
                if not np.isfinite(on_model_scale):  # e.g. log of a duration of 0 months
                    raise ProfileError(f"{design.COVARIATE[name].label} of {value:g} is outside what the model can "
                                       f"use (its transform is not finite there); give a value above {lo:g}")

    def with_strategy(self, strategy: str) -> Profile:
        return replace(self, strategy=strategy)

    def describe(self) -> str:
        cov = ", ".join(f"{design.COVARIATE[k].label} {v:g}" for k, v in self.covariates.items() if v is not None)
        from trt_recovery.labels import population_label, strategy_label, threshold_label

        return (f"{strategy_label(self.strategy)} | {population_label(self.population)} | "
                f"recovery = {threshold_label(self.threshold)}"
                + (f" | preparation {self.preparation}" if self.preparation else "") + (f" | {cov}" if cov else ""))


def covariate_note_text(estimable: Mapping[str, bool], profile: Profile) -> str:
    """The note for covariates a profile sets whose effect the fit could not estimate."""
    missing = [design.COVARIATE[k].label for k, v in profile.covariates.items() if v is not None and not estimable.get(k)]
    if not missing:
        return ""
    return (f"The effect of {', '.join(missing)} could not be estimated (fewer than {design.MIN_REPORTING} arms in the fit "
            "report it, or all report the same value); the prediction does not depend on the value given.")
