"""Posterior quantities of the survival model for any covariate profile, through the model's graph.

A :class:`Profile` is a strategy x population x threshold x androgen preparation x covariates
(:data:`trt_recovery.survival.design.COVARIATES`; unset = the population average). For a list of
profiles, :class:`Predictions` rebuilds the fit's model with those rows as prediction variables
(:func:`trt_recovery.survival.design.prediction_block`) and evaluates them for every posterior draw
(``pm.sample_posterior_predictive``, chain and draw kept); nothing here restates the linear
predictor. From the per-draw log time scale ``mu``, non-recovery logit ``eta`` and the family's
shape come:

* P(recovered by t) = (1 - pi) F(t), as curves with credible bands;
* the median time to recovery (the t with R(t) = 0.5; infinite when 1 - pi <= 0.5, i.e. fewer
  than half the men ever reach the threshold: reported as "not reached");
* P(never recovers) = pi;
* contrasts against spontaneous recovery (strategy ``none``) with everything else equal.

"Average study" sets the study effects to zero; "new study" adds one draw of a new study's
effects (seeded, shared by every profile of the call). Outputs state the evidence behind a
profile (studies, arms and rows of the fit with its strategy and population): without any, the
estimate is the prior plus the structure borrowed from other strategies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import numpy as np
import pandas as pd
import xarray as xr

from trt_recovery.summaries import flag_columns, mcse_median, summarise
from trt_recovery.survival import design
from trt_recovery.survival.families import get_family
from trt_recovery.survival.profile import Profile, ProfileError, covariate_note_text  # noqa: F401 - re-exported

REFERENCE_STRATEGY = design.FACTOR["strategy"].reference


class Predictions:
    """Per-draw linear predictors of a list of profiles, and what follows from them.

    Parameters
    ----------
    fit : Fit
        A survival-model fit (:func:`trt_recovery.posterior.load_fit`).
    profiles : sequence of Profile
    seed : int
        Seed of the draws made at prediction time (a new study's effects; effects of levels with
        no data, which are their prior).
    group : {"posterior", "prior"}
        Which draws to use (``prior`` for prior predictive checks).
    """

    def __init__(self, fit, profiles: Sequence[Profile], seed: int = 0, group: str = "posterior"):
        for p in profiles:
            p.check()
        self.fit, self.profiles, self.seed = fit, list(profiles), seed
        self.family = get_family(fit.spec.family)
        table = design.profile_table(self.profiles)
        ds = fit.predictions(list(design.PREDICTION_VARS), predict=table, seed=seed, group=group)
        self.mu = ds["profile_time_logscale"]
        self.eta = ds["profile_cure_logit"]
        self.mu_new = ds["profile_time_logscale_new_study"]
        self.eta_new = ds["profile_cure_logit_new_study"]
        shape_var = self.family.shape_variable
        self.shape = fit.tree[group].to_dataset()[shape_var]

    def _pred(self, new_study: bool) -> tuple[xr.DataArray, xr.DataArray]:
        return (self.mu_new, self.eta_new) if new_study else (self.mu, self.eta)

    def p_never(self, new_study: bool = False) -> xr.DataArray:
        _, eta = self._pred(new_study)
        return 1.0 / (1.0 + np.exp(-eta))

    def recovered_by(self, times: Sequence[float], new_study: bool = False) -> xr.DataArray:
        """P(recovered by t), dims (chain, draw, profile, time)."""
        mu, eta = self._pred(new_study)
        t = xr.DataArray(np.asarray(times, float), dims="time", coords={"time": np.asarray(times, float)})
        p_rec = 1.0 / (1.0 + np.exp(eta))
        log_f = xr.apply_ufunc(self.family.log_cdf, t, mu, self.shape)
        return p_rec * np.exp(log_f)

    def median_time(self, new_study: bool = False) -> xr.DataArray:
        """Months by which half the men have recovered (inf in draws where fewer than half ever do)."""
        mu, eta = self._pred(new_study)
        p_rec = 1.0 / (1.0 + np.exp(eta))
        ok = p_rec > 0.5
        target = xr.where(ok, 0.5 / p_rec, 0.5)
        q = xr.apply_ufunc(self.family.quantile, target, mu, self.shape)
        return xr.where(ok, q, np.inf)

    def at(self, da: xr.DataArray, i: int) -> xr.DataArray:
        return da.isel(profile=i)


# ------------------------------------------------------------------------------------------------
# Evidence behind a profile


def evidence(fit, strategy: str, population: str | None = None) -> dict:
    """Studies, arms, men and rows of the fit with this strategy (and population)."""
    used = fit.used
    if used.empty:
        return {"studies": 0, "arms": 0, "men": 0, "rows": 0, "study_ids": [], "thresholds": []}
    sel = used["strategy"] == strategy
    if population is not None:
        sel &= used["population"] == population
    sub = used[sel]
    arms = sub.drop_duplicates("arm_id")
    men = pd.to_numeric(arms["arm_n"], errors="coerce").fillna(0).sum() if "arm_n" in arms else 0
    return {"studies": sub["study_id"].nunique(), "arms": len(arms), "men": int(men), "rows": len(sub),
            "study_ids": sorted(sub["study_id"].unique()), "thresholds": sorted(sub["threshold"].dropna().unique())}


def direct_evidence(fit, strategy: str, population: str | None = None) -> bool:
    """True when the fit used at least one row of an arm with this strategy (in this population)."""
    return evidence(fit, strategy, population)["rows"] > 0


def estimable_covariates(fit) -> dict[str, bool]:
    """Whether each covariate has a coefficient in the fit (enough arms reported it)."""
    arms = fit.model_data().arms
    inc = {c.name for c in design.included_covariates(arms)} if arms is not None else set()
    return {c.name: c.name in inc for c in design.COVARIATES}


def covariate_note(fit, profile: Profile) -> str:
    return covariate_note_text(estimable_covariates(fit), profile)


def evidence_note(fit, profile: Profile) -> str:
    ev = evidence(fit, profile.strategy, profile.population)
    if ev["rows"]:
        return (f"Direct evidence: {ev['studies']} stud{'y' if ev['studies'] == 1 else 'ies'} "
                f"({', '.join(ev['study_ids'])}), {ev['arms']} arm(s), {ev['men']} men, {ev['rows']} reported number(s); "
                f"thresholds {', '.join(ev['thresholds'])}.")
    other = evidence(fit, profile.strategy)
    if other["rows"]:
        return (f"No direct evidence for strategy '{profile.strategy}' in population '{profile.population}' "
                f"(its {other['studies']} stud{'y is' if other['studies'] == 1 else 'ies are'} in other populations): "
                "the estimate combines the strategy's effect from other populations with this population's effect.")
    return (f"No direct evidence for strategy '{profile.strategy}' in this fit: its effect is the prior only, "
            "and the estimate is prior plus structure borrowed from other strategies.")


# ------------------------------------------------------------------------------------------------
# One profile, as the CLI and notebooks report it


def _time_summary(draws: xr.DataArray) -> dict:
    flat = np.asarray(draws.values, float).reshape(-1)
    s = summarise(draws)
    s["p_not_reached"] = float(np.mean(~np.isfinite(flat)))
    s["mcse_median"] = mcse_median(draws)
    return s


def evidence_flags(fit, quantities: dict[str, tuple]) -> dict[str, dict]:
    """The flag columns (:func:`trt_recovery.summaries.flag_columns`) of several quantities of one fit.

    ``quantities`` maps a key to ``(prior draws, posterior draws with dims (chain, draw), strategy)``;
    the power-scaling sensitivities of all of them are computed in one pass, and a strategy no used
    row reports gets "no direct evidence".
    """
    from trt_recovery.power_scaling import fit_sensitivity

    sens = fit_sensitivity(fit, {k: post for k, (_, post, _) in quantities.items()})
    direct = {s: evidence(fit, s)["rows"] > 0 for s in {strategy for _, _, strategy in quantities.values()}}
    return {k: flag_columns(np.asarray(prior), np.asarray(post), None if sens is None else sens.loc[k],
                            direct=direct[strategy])
            for k, (prior, post, strategy) in quantities.items()}


def predict(fit, profile: Profile, times: Sequence[float], seed: int = 0) -> dict:
    """Everything the CLI and notebooks report for one profile, for an average and a new study."""
    pred = Predictions(fit, [profile], seed=seed)
    prior = Predictions(fit, [profile], seed=seed, group="prior") if "prior" in fit.tree.children else None
    notes = [n for n in (evidence_note(fit, profile), covariate_note(fit, profile)) if n]
    out = {"profile": asdict(profile), "times": list(map(float, times)), "note": " ".join(notes),
           "evidence": {k: v for k, v in evidence(fit, profile.strategy, profile.population).items()}}
    for label, new in (("average_study", False), ("new_study", True)):
        curve = pred.recovered_by(times, new).isel(profile=0)
        med = pred.median_time(new).isel(profile=0)
        med_s = _time_summary(med)
        out[label] = {
            "recovered_by": [summarise(curve.isel(time=j)) for j in range(len(times))],
            "median_time_months": med_s,
            "p_median_not_reached": med_s["p_not_reached"],
            "p_never": summarise(pred.p_never(new).isel(profile=0)),
        }
    if prior is not None:
        post_curve = pred.recovered_by(times).isel(profile=0)
        prior_curve = prior.recovered_by(times).isel(profile=0)
        cols = evidence_flags(fit, {f"{t:g}": (prior_curve.isel(time=j), post_curve.isel(time=j), profile.strategy)
                                    for j, t in enumerate(times)})
        out["evidence_flag"] = {k: {"flag": c.pop("evidence_flag"), **c} for k, c in cols.items()}
    return out


def contrast_vs_none(fit, profile: Profile, t: float, seed: int = 0) -> dict:
    """Difference in P(recovered by t) and ratio of median times, strategy vs spontaneous."""
    base = profile.with_strategy(REFERENCE_STRATEGY)
    pred = Predictions(fit, [profile, base], seed=seed)
    r = pred.recovered_by([t]).isel(time=0)
    r1, r0 = r.isel(profile=0), r.isel(profile=1)
    m = pred.median_time()
    m1, m0 = m.isel(profile=0).values.ravel(), m.isel(profile=1).values.ravel()
    ok = np.isfinite(m1) & np.isfinite(m0)
    return {
        "strategy": profile.strategy,
        "t_months": t,
        "diff_recovered_by_t": summarise(r1 - r0),
        "p_better_than_none": float((r1 > r0).mean()),
        "median_time_ratio": summarise(m1[ok] / m0[ok]) if ok.any() else None,
        "note": evidence_note(fit, profile),
    }
