r"""Hierarchical binomial model of recovery by the end of follow-up.

For arm :math:`j` of study :math:`s(j)` with strategy :math:`k(j)` in population :math:`p(j)`,
:math:`r_j` of :math:`n_j` men reached the arm's recovery threshold by the end of its follow-up:

.. math::

    r_j &\sim \operatorname{Binomial}(n_j, \pi_j) \\
    \operatorname{logit} \pi_j &= \mu_{k(j)} + \gamma_{p(j)} + \theta_{h(j)} + \sigma_{\text{study}}\, z_{s(j)},
        \qquad \gamma_{\text{ref}} = 0, \quad \theta_{\text{any}} = 0 \\
    \mu_k &\sim \operatorname{Normal}(0, \tau_\mu), \quad
    \gamma_p \sim \operatorname{Normal}(0, \tau_\gamma), \quad
    \sigma_{\text{study}} \sim \operatorname{HalfNormal}(\tau_\sigma), \quad
    z_s \sim \operatorname{Normal}(0, 1)

(non-centred study effect, shared by the arms of a study). :math:`\theta_h` is the threshold
of arm :math:`j`'s count, treated as in every model of the package (one ordering, the schema's
``threshold_ladder``, and the same construction as the survival model,
:func:`trt_recovery.survival.design.threshold_effect`): on the ladder, :math:`\theta_h =
-\Delta \sum_{l \le h} w_l`, a half-normal total drop :math:`\Delta \sim
\operatorname{HalfNormal}(\tau_\Delta)` from any sperm to the top of the ladder split over the
steps by symmetric Dirichlet weights :math:`w` (a stricter threshold never has a higher rate;
only the segments that end at observed thresholds are sampled); a threshold
off the ladder (own baseline, total motile count, "improvement", normal range) has a free effect
:math:`\theta_h \sim \operatorname{Normal}(0, \tau_\theta)`. The reported rates are at the
reference threshold, any sperm in the ejaculate, so strategies are compared like with like; a
strategy seen only at another threshold reaches "any sperm" through :math:`\theta`, whose prior
then carries weight (the sensitivity flag says so). The reference population is ``trt``
when the data have it (else the first in alphabetical order); :math:`\gamma_p` shifts every
strategy alike in population :math:`p`. Reported quantities:

* ``cell_rate[k, p] = logit^{-1}(mu_k + gamma_p)``: recovery (to any sperm) in an average study
  with strategy k in population p; ``pooled_rate[k]`` is the same in the reference population;
* ``cell_predicted_rate[k, p] = logit^{-1}(mu_k + gamma_p + sigma_study * z_new)``,
  :math:`z_{new} \sim N(0, 1)`: recovery in a new study (its spread is the prediction
  interval); ``predicted_rate[k]`` is the same in the reference population. These are prediction
  variables: :math:`z_{new}` is drawn after sampling (seeded), not sampled by NUTS.

One row per arm enters the likelihood: the recovery count (or a percentage with a reported
denominator, turned into a count in :mod:`trt_recovery.harmonise`) at the latest follow-up time;
when an arm reports several thresholds the most lenient one on the schema's ``threshold_ladder``
is used (an unordered threshold only when the arm has no ladder threshold). Every other row is reported
as excluded with its reason. Follow-up times differ between arms and this model does not adjust
for them: the survival model does. Priors (``strategy_logit_sd`` = :math:`\tau_\mu`,
``population_logit_sd`` = :math:`\tau_\gamma`, ``study_sd_scale`` = :math:`\tau_\sigma`,
``threshold_total_scale`` = :math:`\tau_\Delta`, ``threshold_free_sd`` = :math:`\tau_\theta`) are
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
    lazy,
    modelled_elsewhere,
    new_study,
    observed_term,
    one_row_per_arm,
    population_shift,
    pymc_coords,
    resolve_overlaps,
    select_rows,
)
from trt_recovery.schema import load_schema

NAME = "binomial_success"
DEFAULT_PRIORS = {"strategy_logit_sd": 1.5, "population_logit_sd": 1.0, "study_sd_scale": 1.0,
                  "threshold_total_scale": 2.0, "threshold_weight_concentration": 1.0,
                  "threshold_free_sd": 1.0}
PRIOR_NOTES = {
    "strategy_logit_sd": "SD of each strategy's recovery logit (average study, reference population)",
    "population_logit_sd": "SD of each population's shift of the logit (vs TRT)",
    "study_sd_scale": "half-normal scale of the between-study SD of the logit",
    "threshold_total_scale": "half-normal scale of the logit drop from any sperm to the top of the threshold ladder (20 million/mL)",
    "threshold_weight_concentration": "symmetric Dirichlet concentration splitting that drop over the ladder's steps",
    "threshold_free_sd": "SD of the logit shift of a threshold off the ladder (own baseline, total motile count, improvement...) vs any sperm",
}
REFERENCE_THRESHOLD = "any"
COUNT_OUTCOMES = ("recovered_count", "cumulative_proportion", "km_point")
PREDICTION_VARS = ("predicted_rate", "cell_predicted_rate")


def threshold_rank(threshold: str) -> int:
    """Rank for choosing an arm's row: ladder position, then unordered thresholds after the ladder."""
    schema = load_schema()
    r = schema.threshold_rank(threshold)
    return r if r is not None else len(schema.threshold_ladder) + schema.unordered_thresholds().index(threshold)


def prepare_counts(kinds: tuple[str, ...], what: str):
    """A ``prepare`` that keeps one count of the outcome ``kinds`` per arm (``what`` names them in
    exclusion reasons): the most lenient threshold of the ladder, then the latest time."""

    def prepare(harmonised: pd.DataFrame, selection) -> ModelData:
        df, excluded = select_rows(harmonised, selection, own=kinds)
        usable = df["outcome"].isin(kinds) & df["n"].notna() & df["events"].notna()
        for _, r in df[~usable].iterrows():
            reason = (f"outcome '{r.outcome}' is not a {what}{modelled_elsewhere(r.outcome)}" if r.outcome not in kinds
                      else "no denominator (n) or count (events)")
            excluded.append({"outcome_id": r.outcome_id, "arm_id": r.arm_id, "study_id": r.study_id, "reason": reason})
        cand, overlap = resolve_overlaps(df[usable])
        excluded += overlap
        cand["_thr"] = cand["threshold"].map(threshold_rank)
        cand["_time"] = cand["time_months"].fillna(np.inf)  # unspecified time = end of follow-up
        chosen, dropped = one_row_per_arm(cand, ["_thr", "_time"], [True, False], "more lenient threshold or later time")
        excluded += dropped
        used = chosen.drop(columns=["_thr", "_time"]).reset_index(drop=True)
        coords = {**arm_coords(used), **threshold_coords(used["threshold"].tolist())}
        return ModelData(used=used, exclusions=exclusion_frame(excluded), coords=coords)

    return prepare


prepare = prepare_counts(COUNT_OUTCOMES, "recovery count")


def threshold_coords(thresholds) -> dict[str, list[str]]:
    """Ladder segments and free thresholds among the used thresholds (the survival model's own)."""
    from trt_recovery.survival.design import ladder_segments

    schema = load_schema()
    on_ladder = any((schema.threshold_rank(t) or 0) > 0 for t in thresholds)  # a step below any sperm is used
    return {"threshold_segment": [label for label, _ in ladder_segments(thresholds)] if on_ladder else [],
            "threshold_free": [t for t in schema.unordered_thresholds() if t in set(thresholds)]}


def threshold_shift(thresholds: list[str], coords, priors):
    """The logit drop of each arm's threshold against any sperm (inside a model context)."""
    import pytensor.tensor as pt

    from trt_recovery.survival.design import segments_from_labels, threshold_effect

    segments, free_levels = coords["threshold_segment"], coords["threshold_free"]
    if not segments and not free_levels:
        return pt.zeros(len(thresholds))
    if segments:
        sizes = np.array([len(st) for _, st in segments_from_labels(segments)], dtype=float)
        total = pm.HalfNormal("threshold_total", priors["threshold_total_scale"])
        weights = (pm.Dirichlet("threshold_weights", priors["threshold_weight_concentration"] * sizes,
                                dims="threshold_segment") if len(sizes) > 1 else pt.ones(len(sizes)))
        steps = pm.Deterministic("threshold_step", total * weights, dims="threshold_segment")
    else:  # no threshold below any sperm on the ladder: no ladder parameter (none would touch the data)
        steps, segments = pt.zeros(1), [load_schema().threshold_ladder[-1]]
    free = (pm.Normal("threshold_free_effect", 0.0, priors["threshold_free_sd"], dims="threshold_free")
            if free_levels else None)
    return threshold_effect(thresholds, steps, free, free_levels, segments)


def build(data: ModelData, priors: dict[str, float], predict=None) -> pm.Model:
    """Build the PyMC model (see the module docstring for the equations); ``predict`` (any true
    value) adds the new-study prediction variables."""
    used = data.used
    study_idx = pd.Categorical(used["study_id"], categories=data.coords["study"]).codes
    strategy_idx = pd.Categorical(used["strategy"], categories=data.coords["strategy"]).codes
    if len(used) == 0:
        raise ValueError("binomial model: no arm has a usable count")
    pop_idx = pd.Categorical(used["population"], categories=data.coords["population"]).codes
    with pm.Model(coords=pymc_coords(data.coords)) as model:
        n = pm.Data("n_men", used["n"].astype(int).to_numpy(), dims="arm")
        mu = pm.Normal("strategy_logit", 0.0, priors["strategy_logit_sd"], dims="strategy")
        gamma = population_shift("population_logit", priors["population_logit_sd"], data.coords)
        sigma = pm.HalfNormal("study_sd", priors["study_sd_scale"])
        z = pm.Normal("study_z", 0.0, 1.0, dims="study")
        pm.Deterministic("study_effect", sigma * z, dims="study")
        logit_p = mu[strategy_idx] + gamma[pop_idx] - threshold_shift(used["threshold"].tolist(), data.coords, priors) \
            + sigma * z[study_idx]
        pm.Deterministic("arm_rate", pm.math.invlogit(logit_p), dims="arm")
        weight = pm.Data("n_recovered_weight", np.ones(len(used)), dims="arm")
        observed_term("n_recovered", lambda v, nn, lp: pm.logp(pm.Binomial.dist(n=nn, logit_p=lp), v),
                      used["events"].astype(int).to_numpy(), [n, logit_p], weight, "arm")
        cell = mu[:, None] + gamma[None, :]
        pm.Deterministic("pooled_rate", pm.math.invlogit(mu), dims="strategy")
        pm.Deterministic("cell_rate", pm.math.invlogit(cell), dims=("strategy", "population"))
        if predict:
            shift, _ = new_study(sigma)
            pm.Deterministic("predicted_rate", pm.math.invlogit(mu + shift), dims="strategy")
            pm.Deterministic("cell_predicted_rate", pm.math.invlogit(cell + shift), dims=("strategy", "population"))
    return model


SPEC = register(
    ModelSpec(
        name=NAME,
        description="Hierarchical binomial model of recovery by end of follow-up (strategy and population effects, study random effect)",
        default_priors=DEFAULT_PRIORS,
        prepare=prepare,
        build=build,
        headline=lazy("trt_recovery.success:headline"),
        reporter=lazy("trt_recovery.success:report_fit"),
        source_modules=("trt_recovery.models.binomial_success", "trt_recovery.models.base", "trt_recovery.survival.design"),
        prior_notes=PRIOR_NOTES,
    )
)
