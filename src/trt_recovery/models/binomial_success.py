r"""Hierarchical binomial model of recovery by the end of follow-up.

For arm :math:`j` of study :math:`s(j)` with strategy :math:`k(j)` in population :math:`p(j)`,
:math:`r_j` of :math:`n_j` men reached the arm's recovery threshold by the end of its follow-up:

.. math::

    r_j &\sim \operatorname{Binomial}(n_j, \pi_j) \\
    \operatorname{logit} \pi_j &= \mu_{k(j)} + \gamma_{p(j)} + \sigma_{\text{study}}\, z_{s(j)},
        \qquad \gamma_{\text{ref}} = 0 \\
    \mu_k &\sim \operatorname{Normal}(0, \tau_\mu), \quad
    \gamma_p \sim \operatorname{Normal}(0, \tau_\gamma), \quad
    \sigma_{\text{study}} \sim \operatorname{HalfNormal}(\tau_\sigma), \quad
    z_s \sim \operatorname{Normal}(0, 1)

(non-centred study effect, shared by the arms of a study). The reference population is ``trt``
when the data have it (else the first in alphabetical order); :math:`\gamma_p` shifts every
strategy alike in population :math:`p`. Reported quantities:

* ``cell_rate[k, p] = logit^{-1}(mu_k + gamma_p)``: recovery in an average study with strategy k
  in population p; ``pooled_rate[k]`` is the same in the reference population;
* ``cell_predicted_rate[k, p] = logit^{-1}(mu_k + gamma_p + sigma_study * z_new)``,
  :math:`z_{new} \sim N(0, 1)`: recovery in a new study (its spread is the prediction
  interval); ``predicted_rate[k]`` is the same in the reference population.

One row per arm enters the likelihood: the recovery count (or a percentage with a reported
denominator, turned into a count in :mod:`trt_recovery.harmonise`) at the latest follow-up time;
when an arm reports several thresholds the most lenient one is used. Every other row is reported
as excluded with its reason. Thresholds and follow-up times differ between arms and this model
does not adjust for them: the survival model does. Priors (``strategy_logit_sd`` = :math:`\tau_\mu`,
``population_logit_sd`` = :math:`\tau_\gamma`, ``study_sd_scale`` = :math:`\tau_\sigma`) are
weakly informative on the logit scale: a 95% prior range for a strategy's rate of about 5% to 95%,
and a population shift of up to about 2 on the logit scale.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm

from trt_recovery.models import register
from trt_recovery.models.base import (
    ModelData,
    ModelSpec,
    arm_coords,
    exclusion_frame,
    one_row_per_arm,
    population_shift,
    pymc_coords,
    resolve_overlaps,
    select_rows,
)

NAME = "binomial_success"
DEFAULT_PRIORS = {"strategy_logit_sd": 1.5, "population_logit_sd": 1.0, "study_sd_scale": 1.0}
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
    chosen, dropped = one_row_per_arm(cand, ["_thr", "_time"], [True, False], "more lenient threshold or later time")
    excluded += dropped
    used = chosen.drop(columns=["_thr", "_time"]).reset_index(drop=True)
    coords = arm_coords(used)
    return ModelData(used=used, exclusions=exclusion_frame(excluded), coords=coords)


def build(data: ModelData, priors: dict[str, float]) -> pm.Model:
    """Build the PyMC model (see the module docstring for the equations)."""
    used = data.used
    study_idx = pd.Categorical(used["study_id"], categories=data.coords["study"]).codes
    strategy_idx = pd.Categorical(used["strategy"], categories=data.coords["strategy"]).codes
    if len(used) == 0:
        raise ValueError("binomial_success: no arm has a usable recovery count")
    pop_idx = pd.Categorical(used["population"], categories=data.coords["population"]).codes
    with pm.Model(coords=pymc_coords(data.coords)) as model:
        n = pm.Data("n_men", used["n"].astype(int).to_numpy(), dims="arm")
        mu = pm.Normal("strategy_logit", 0.0, priors["strategy_logit_sd"], dims="strategy")
        gamma = population_shift("population_logit", priors["population_logit_sd"], data.coords)
        sigma = pm.HalfNormal("study_sd", priors["study_sd_scale"])
        z = pm.Normal("study_z", 0.0, 1.0, dims="study")
        pm.Deterministic("study_effect", sigma * z, dims="study")
        logit_p = mu[strategy_idx] + gamma[pop_idx] + sigma * z[study_idx]
        pm.Deterministic("arm_rate", pm.math.invlogit(logit_p), dims="arm")
        pm.Binomial("n_recovered", n=n, logit_p=logit_p, observed=used["events"].astype(int).to_numpy(), dims="arm")
        cell = mu[:, None] + gamma[None, :]
        pm.Deterministic("pooled_rate", pm.math.invlogit(mu), dims="strategy")
        pm.Deterministic("cell_rate", pm.math.invlogit(cell), dims=("strategy", "population"))
        z_new = pm.Normal("new_study_z", 0.0, 1.0)
        pm.Deterministic("predicted_rate", pm.math.invlogit(mu + sigma * z_new), dims="strategy")
        pm.Deterministic("cell_predicted_rate", pm.math.invlogit(cell + sigma * z_new), dims=("strategy", "population"))
    return model


SPEC = register(
    ModelSpec(
        name=NAME,
        description="Hierarchical binomial model of recovery by end of follow-up (strategy and population effects, study random effect)",
        default_priors=DEFAULT_PRIORS,
        prepare=prepare,
        build=build,
        summary_vars=("strategy_logit", "study_sd", "cell_rate", "cell_predicted_rate"),
    )
)
