r"""Hierarchical binomial model of recovery by the end of follow-up.

For arm :math:`j` of study :math:`s(j)` with strategy :math:`k(j)`, :math:`r_j` of :math:`n_j`
men reached the arm's recovery threshold by the end of its follow-up:

.. math::

    r_j &\sim \operatorname{Binomial}(n_j, p_j) \\
    \operatorname{logit} p_j &= \mu_{k(j)} + \sigma_{\text{study}}\, z_{s(j)} \\
    \mu_k &\sim \operatorname{Normal}(0, \tau_\mu), \quad
    \sigma_{\text{study}} \sim \operatorname{HalfNormal}(\tau_\sigma), \quad
    z_s \sim \operatorname{Normal}(0, 1)

(non-centred study effect, shared by the arms of a study). Reported quantities:

* ``pooled_rate[k] = logit^{-1}(mu_k)``: recovery in an average study with strategy k;
* ``predicted_rate[k] = logit^{-1}(mu_k + sigma_study * z_new)``, :math:`z_{new} \sim N(0, 1)`:
  recovery in a new study (its spread is the prediction interval).

One row per arm enters the likelihood: the recovery count (or a percentage with a reported
denominator, turned into a count in :mod:`trt_recovery.harmonise`) at the latest follow-up time;
when an arm reports several thresholds the most lenient one is used. Every other row is reported
as excluded with its reason. Thresholds and follow-up times differ between arms and this model
does not adjust for them: the survival model does. Priors (``strategy_logit_sd`` = :math:`\tau_\mu`,
``study_sd_scale`` = :math:`\tau_\sigma`) are weakly informative on the logit scale: a 95% prior
range for a strategy's rate of about 5% to 95%.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm

from trt_recovery.models import register
from trt_recovery.models.base import ModelData, ModelSpec, exclusion_frame, resolve_overlaps, select_rows

NAME = "binomial_success"
DEFAULT_PRIORS = {"strategy_logit_sd": 1.5, "study_sd_scale": 1.0}
COUNT_OUTCOMES = ("recovered_count", "cumulative_proportion", "km_point")
#: Most lenient first: when an arm reports several thresholds, the first one present is used.
THRESHOLD_ORDER = ("any", "1", "3", "5", "tmc5", "10", "15", "20", "normal_who", "baseline")


def prepare(harmonised: pd.DataFrame, selection) -> ModelData:
    """Select one recovery count per arm from the harmonised table."""
    df, excluded = select_rows(harmonised, selection)
    usable = df["outcome"].isin(COUNT_OUTCOMES) & df["n"].notna() & df["events"].notna()
    for _, r in df[~usable].iterrows():
        reason = (
            f"outcome '{r.outcome}' is not a recovery count"
            if r.outcome not in COUNT_OUTCOMES
            else "no denominator (n) or count (events)"
        )
        excluded.append({"outcome_id": r.outcome_id, "arm_id": r.arm_id, "study_id": r.study_id, "reason": reason})
    cand, overlap = resolve_overlaps(df[usable])
    excluded += overlap
    cand["_thr"] = cand["threshold"].map({t: i for i, t in enumerate(THRESHOLD_ORDER)})
    cand["_time"] = cand["time_months"].fillna(np.inf)  # unspecified time = end of follow-up
    cand = cand.sort_values(["arm_id", "_thr", "_time"], ascending=[True, True, False])
    chosen = cand.groupby("arm_id", sort=True).head(1)
    for _, r in cand.drop(chosen.index).iterrows():
        c = chosen.loc[chosen["arm_id"] == r.arm_id].iloc[0]
        excluded.append(
            {
                "outcome_id": r.outcome_id,
                "arm_id": r.arm_id,
                "study_id": r.study_id,
                "reason": f"arm already contributes {c.outcome_id} (more lenient threshold or later time)",
            }
        )
    used = chosen.drop(columns=["_thr", "_time"]).reset_index(drop=True)
    coords = {
        "arm": used["arm_id"].tolist(),
        "study": sorted(used["study_id"].unique().tolist()),
        "strategy": sorted(used["strategy"].unique().tolist()),
    }
    return ModelData(used=used, exclusions=exclusion_frame(excluded), coords=coords)


def build(data: ModelData, priors: dict[str, float]) -> pm.Model:
    """Build the PyMC model (see the module docstring for the equations)."""
    used = data.used
    study_idx = pd.Categorical(used["study_id"], categories=data.coords["study"]).codes
    strategy_idx = pd.Categorical(used["strategy"], categories=data.coords["strategy"]).codes
    if len(used) == 0:
        raise ValueError("binomial_success: no arm has a usable recovery count")
    with pm.Model(coords=data.coords) as model:
        n = pm.Data("n_men", used["n"].astype(int).to_numpy(), dims="arm")
        mu = pm.Normal("strategy_logit", 0.0, priors["strategy_logit_sd"], dims="strategy")
        sigma = pm.HalfNormal("study_sd", priors["study_sd_scale"])
        z = pm.Normal("study_z", 0.0, 1.0, dims="study")
        pm.Deterministic("study_effect", sigma * z, dims="study")
        logit_p = mu[strategy_idx] + sigma * z[study_idx]
        pm.Deterministic("arm_rate", pm.math.invlogit(logit_p), dims="arm")
        pm.Binomial("n_recovered", n=n, logit_p=logit_p, observed=used["events"].astype(int).to_numpy(), dims="arm")
        pm.Deterministic("pooled_rate", pm.math.invlogit(mu), dims="strategy")
        z_new = pm.Normal("new_study_z", 0.0, 1.0)
        pm.Deterministic("predicted_rate", pm.math.invlogit(mu + sigma * z_new), dims="strategy")
    return model


SPEC = register(
    ModelSpec(
        name=NAME,
        description="Hierarchical binomial model of recovery by end of follow-up (strategy effect, study random effect)",
        default_priors=DEFAULT_PRIORS,
        prepare=prepare,
        build=build,
        summary_vars=("strategy_logit", "study_sd", "pooled_rate", "predicted_rate"),
    )
)
