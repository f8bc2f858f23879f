"""Posterior quantities of the survival model for any covariate profile.

For a profile (strategy x population x threshold x TRT duration x androgen preparation x age x
fraction azoospermic) these functions return, per posterior draw:

* P(recovered by t) = (1 - pi) F(t), as curves with credible bands;
* the median time to recovery (the t with R(t) = 0.5; infinite when 1 - pi <= 0.5, i.e. fewer
  than half the men ever reach the threshold);
* P(never recovers) = pi;
* contrasts against spontaneous recovery (strategy ``none``) with everything else equal.

"Average study" sets the study effects to zero; "new study" draws them from their fitted
distribution (seeded), which widens the intervals by the between-study spread. A profile
covariate left as ``None`` takes its population average (the fitted mean of the latent
covariate). Outputs state whether the strategy (and population) has direct evidence in the fit:
without it, the estimate is the prior plus the structure borrowed from other strategies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import xarray as xr

from trt_recovery.models.survival_cure import (
    AGE_CENTRE,
    AGE_SCALE,
    NO_ANDROGEN,
    REFERENCE_POPULATION,
    REFERENCE_PREPARATION,
    REFERENCE_STRATEGY,
    THRESHOLD_LADDER,
    UNKNOWN_PREPARATION,
)
from trt_recovery.schema import load_schema
from trt_recovery.survival.families import get_family

CI = (0.025, 0.975)


class ProfileError(ValueError):
    """A profile names something the model does not know, or an impossible value."""


@dataclass(frozen=True)
class Profile:
    strategy: str = "none"
    population: str = "trt"
    threshold: str = "any"
    duration_months: float | None = None
    preparation: str | None = None
    age: float | None = None
    azoospermic_fraction: float | None = None

    def check(self, posterior: xr.DataTree) -> None:
        schema = load_schema()
        for field, vocab in (("strategy", "strategy"), ("population", "population")):
            v = getattr(self, field)
            if v not in schema.terms(vocab):
                raise ProfileError(f"unknown {field} {v!r} (valid: {', '.join(schema.terms(vocab))})")
        post = posterior["posterior"]
        free = [str(x) for x in post["threshold_free"].values] if "threshold_free" in post.coords else []
        valid_thr = list(THRESHOLD_LADDER) + free
        if self.threshold not in valid_thr:
            raise ProfileError(f"unknown threshold {self.threshold!r} for this fit (valid: {', '.join(valid_thr)})")
        preps = schema.terms("androgen_preparation") + [UNKNOWN_PREPARATION]
        if self.preparation is not None and self.preparation not in preps:
            raise ProfileError(f"unknown preparation {self.preparation!r} (valid: {', '.join(preps)})")
        if self.duration_months is not None and not 0 < self.duration_months <= 600:
            raise ProfileError(f"TRT duration must be in (0, 600] months, got {self.duration_months}")
        if self.age is not None and not 12 <= self.age <= 90:
            raise ProfileError(f"age must be in [12, 90] years, got {self.age}")
        if self.azoospermic_fraction is not None and not 0 <= self.azoospermic_fraction <= 1:
            raise ProfileError(f"azoospermic fraction must be in [0, 1], got {self.azoospermic_fraction}")


def family_of(meta: dict) -> str:
    return meta["model"].rsplit("_", 1)[-1]


def _draws(post: xr.Dataset, name: str) -> np.ndarray:
    """Draws of a variable; a covariate block the fit left out contributes zeros."""
    if name not in post:
        return np.zeros(post.sizes["chain"] * post.sizes["draw"])
    return post[name].stack(sample=("chain", "draw")).transpose("sample", ...).values


def estimable_covariates(posterior: xr.DataTree) -> dict[str, bool]:
    post = posterior["posterior"]
    return {k: f"{k}_time" in post for k in ("duration", "age", "azoospermia")}


def _level(post: xr.Dataset, var: str, dim: str, level: str, reference: str) -> np.ndarray:
    if level == reference:
        return np.zeros(post.sizes["chain"] * post.sizes["draw"])
    return post[var].sel({dim: level}).stack(sample=("chain", "draw")).values


def _threshold(post: xr.Dataset, kind: str, threshold: str) -> np.ndarray:
    if threshold in THRESHOLD_LADDER:
        k = THRESHOLD_LADDER.index(threshold)
        if k == 0:
            return np.zeros(post.sizes["chain"] * post.sizes["draw"])
        steps = _draws(post, f"threshold_{kind}_step")
        return steps[:, :k].sum(axis=1)
    return post[f"threshold_{kind}_free"].sel(threshold_free=threshold).stack(sample=("chain", "draw")).values


def linear_predictors(
    posterior: xr.DataTree, profile: Profile, new_study: bool = False, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-draw log time scale (mu) and non-recovery logit (eta) for a profile."""
    profile.check(posterior)
    post = posterior["posterior"].to_dataset()
    n = post.sizes["chain"] * post.sizes["draw"]
    hh = profile.population == "hh"
    prep = NO_ANDROGEN if hh else (profile.preparation or UNKNOWN_PREPARATION)
    if profile.duration_months is None or hh:
        x_dur = np.zeros(n) if hh else _draws(post, "log_duration_pop_mean")
    else:
        x_dur = np.full(n, np.log(profile.duration_months / 12.0))
    x_age = _draws(post, "age_std_pop_mean") if profile.age is None else np.full(n, (profile.age - AGE_CENTRE) / AGE_SCALE)
    if profile.azoospermic_fraction is None:
        x_azoo = _draws(post, "azoospermia_fraction")
        x_azoo = x_azoo.mean(axis=1) if x_azoo.ndim == 2 else x_azoo
    else:
        x_azoo = np.full(n, float(profile.azoospermic_fraction))
    mu = (
        _draws(post, "time_intercept")
        + _level(post, "strategy_time", "strategy", profile.strategy, REFERENCE_STRATEGY)
        + _level(post, "population_time", "population", profile.population, REFERENCE_POPULATION)
        + _level(post, "preparation_time", "preparation", prep, REFERENCE_PREPARATION)
        + _threshold(post, "time", profile.threshold)
        + _draws(post, "duration_time") * x_dur
        + _draws(post, "age_time") * x_age
        + _draws(post, "azoospermia_time") * x_azoo
    )
    eta = (
        _draws(post, "cure_intercept")
        + _level(post, "strategy_cure", "strategy", profile.strategy, REFERENCE_STRATEGY)
        + _level(post, "population_cure", "population", profile.population, REFERENCE_POPULATION)
        + _threshold(post, "cure", profile.threshold)
        + _draws(post, "duration_cure") * x_dur
        + _draws(post, "age_cure") * x_age
        + _draws(post, "azoospermia_cure") * x_azoo
    )
    if new_study:
        rng = np.random.default_rng(seed)
        mu = mu + _draws(post, "study_time_sd") * rng.standard_normal(n)
        eta = eta + _draws(post, "study_cure_sd") * rng.standard_normal(n)
    return mu, eta


def _shape(posterior: xr.DataTree, meta: dict) -> np.ndarray:
    fam = get_family(family_of(meta))
    return _draws(posterior["posterior"].to_dataset(), f"{fam.name}_{fam.shape_name}")


def recovered_by(posterior, meta, profile: Profile, times, new_study=False, seed=0) -> np.ndarray:
    """Draws x times array of P(recovered by t)."""
    fam = get_family(family_of(meta))
    mu, eta = linear_predictors(posterior, profile, new_study, seed)
    k = _shape(posterior, meta)
    t = np.asarray(times, float)[None, :]
    p_rec = 1.0 / (1.0 + np.exp(eta))[:, None]
    return p_rec * np.exp(fam.log_cdf(t, mu[:, None], k[:, None]))


def p_never(posterior, meta, profile: Profile, new_study=False, seed=0) -> np.ndarray:
    _, eta = linear_predictors(posterior, profile, new_study, seed)
    return 1.0 / (1.0 + np.exp(-eta))


def median_time(posterior, meta, profile: Profile, new_study=False, seed=0) -> np.ndarray:
    """Draws of the time by which half the men have recovered (inf when never)."""
    fam = get_family(family_of(meta))
    mu, eta = linear_predictors(posterior, profile, new_study, seed)
    k = _shape(posterior, meta)
    p_rec = 1.0 / (1.0 + np.exp(eta))
    out = np.full(mu.shape, np.inf)
    ok = p_rec > 0.5
    out[ok] = fam.quantile(0.5 / p_rec[ok], mu[ok], k[ok])
    return out


def summarise(draws: np.ndarray, prob: float = 0.95) -> dict[str, float]:
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    return {
        "median": float(np.median(draws)),
        "lower": float(np.quantile(draws, lo)),
        "upper": float(np.quantile(draws, hi)),
    }


def direct_evidence(meta: dict, strategy: str, population: str | None = None) -> bool:
    """True when the fit used at least one row from an arm with this strategy (and population)."""
    used = pd.DataFrame(meta["used_rows"])
    if used.empty:
        return False
    sel = used["strategy"] == strategy
    if population is not None:
        sel &= used["population"] == population
    return bool(sel.any())


def covariate_note(posterior, profile: Profile) -> str:
    est = estimable_covariates(posterior)
    asked = {"duration": profile.duration_months, "age": profile.age, "azoospermia": profile.azoospermic_fraction}
    missing = [k for k, v in asked.items() if v is not None and not est[k]]
    if not missing:
        return ""
    return (
        f"The effect of {', '.join(missing)} could not be estimated (fewer than two arms in the fit report it, or all report the same value); "
        "the prediction does not depend on the value given."
    )


def evidence_note(meta: dict, profile: Profile) -> str:
    if direct_evidence(meta, profile.strategy, profile.population):
        return ""
    if direct_evidence(meta, profile.strategy):
        return (
            f"No direct evidence for strategy '{profile.strategy}' in population '{profile.population}': "
            "its estimate combines the strategy's effect from other populations with this population's effect."
        )
    return (
        f"No direct evidence for strategy '{profile.strategy}' in this fit: its effect is the prior only, "
        "and the estimate is prior plus structure borrowed from other strategies."
    )


def predict(posterior, meta, profile: Profile, times, seed: int = 0) -> dict:
    """Everything the CLI and notebooks report for one profile, for an average and a new study."""
    notes = [n for n in (evidence_note(meta, profile), covariate_note(posterior, profile)) if n]
    out = {"profile": asdict(profile), "times": list(map(float, times)), "note": " ".join(notes)}
    for label, new in (("average_study", False), ("new_study", True)):
        curve = recovered_by(posterior, meta, profile, times, new, seed)
        med = median_time(posterior, meta, profile, new, seed)
        out[label] = {
            "recovered_by": [summarise(curve[:, j]) for j in range(curve.shape[1])],
            "median_time_months": summarise(med),
            "p_median_not_reached": float(np.mean(~np.isfinite(med))),
            "p_never": summarise(p_never(posterior, meta, profile, new, seed)),
        }
    return out


def contrast_vs_none(posterior, meta, profile: Profile, t: float, seed: int = 0) -> dict:
    """Difference in P(recovered by t) and ratio of median times, strategy vs spontaneous."""
    base = Profile(**{**asdict(profile), "strategy": REFERENCE_STRATEGY})
    r1 = recovered_by(posterior, meta, profile, [t], seed=seed)[:, 0]
    r0 = recovered_by(posterior, meta, base, [t], seed=seed)[:, 0]
    m1 = median_time(posterior, meta, profile, seed=seed)
    m0 = median_time(posterior, meta, base, seed=seed)
    ok = np.isfinite(m1) & np.isfinite(m0)
    return {
        "strategy": profile.strategy,
        "t_months": t,
        "diff_recovered_by_t": summarise(r1 - r0),
        "p_better_than_none": float(np.mean(r1 > r0)),
        "median_time_ratio": summarise(m1[ok] / m0[ok]) if ok.any() else None,
        "note": evidence_note(meta, profile),
    }
