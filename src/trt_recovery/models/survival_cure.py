r"""Hierarchical mixture-cure AFT model of time to sperm recovery, fitted to every reporting format.

For an observation :math:`i` of arm :math:`j` (study :math:`s`) at recovery threshold :math:`h`,
a man never reaches the threshold with probability :math:`\pi_{jh}`; otherwise his time to reach
it (months from the arm's time zero) follows an AFT family (Weibull by default; log-normal or
log-logistic by model name) with log-scale :math:`\mu_{jh}` and a shared shape:

.. math::

    \mu_{jh} &= \alpha + \beta^{S}_{k(j)} + \beta^{P}_{p(j)} + \theta_h + \beta^{A}_{a(j)}
               + b_{dur}\,x^{dur}_j + b_{age}\,x^{age}_j + b_{azoo}\,x^{azoo}_j + \sigma_s z_s \\
    \operatorname{logit}\pi_{jh} &= \gamma + \delta^{S}_{k(j)} + \delta^{P}_{p(j)} + \eta_h
               + c_{dur}\,x^{dur}_j + c_{age}\,x^{age}_j + c_{azoo}\,x^{azoo}_j + \tau_s w_s

* strategy effects :math:`\beta^S, \delta^S` are contrasts with spontaneous recovery (``none``
  = 0); population effects with ``trt`` = 0; androgen preparation effects :math:`\beta^A` with
  short-acting ester injections = 0 (arms with no androgen, i.e. ``hh``, get their own level);
* thresholds: on the ladder of ``data/schema.yaml`` (``threshold_ladder``: any < 1 < 1.5 < 3 < 5
  < 10 < 15 < 20 million/mL), both :math:`\theta` and :math:`\eta` are cumulative sums of
  non-negative steps (a stricter threshold is never reached sooner, nor more often): a half-normal
  total shift from "any" to "20" is split into steps by symmetric Dirichlet weights; other
  definitions (the man's own baseline, total motile count, "improvement", normal range,
  unspecified...) each get a free effect. Thresholds are never converted into one another in the
  data; the ladder is the model's only ordering assumption;
* covariates: :math:`x^{dur} = \log(\text{duration months}/12)` (zero for ``hh`` arms),
  :math:`x^{age} = (\text{age} - 35)/10`, :math:`x^{azoo}` = fraction azoospermic at time zero.
  A missing covariate is a latent arm-level value drawn from its population distribution (whose
  mean and spread are learnt from the arms that report it), so arms are never dropped for it.
  A covariate reported by fewer than two arms of the fit (or with a single value) is left out (its coefficient would not be
  identified), and predictions say that its effect could not be estimated. These are arm means,
  not individuals: the coefficients are ecological associations;
* study effects :math:`z_s, w_s \sim N(0, 1)` are non-centred and shared by a study's arms; a
  study with a median over all men of at least ``anchor_min_men`` men, or a mean over every man
  up to a horizon as precise, is *sampled* through the curve at that time
  (:class:`AnchoredStudyEffect`, :func:`anchor_rows`: a change of coordinates, same model);
* between-study SDs :math:`\sigma, \tau` are log-normal (median 0.33, log-SD 0.65): see "Geometry"
  below for why not half-normal.

The regression structure (factors, covariates, parameters, linear predictors, prediction rows)
lives in :mod:`trt_recovery.survival.design`; this module prepares the likelihood terms and
assembles the graph. Factor levels and unordered thresholds with no data are not sampled: they
are drawn from their prior when predictions are made (see the design module).

Each reporting format adds its own observed variable (see :mod:`trt_recovery.survival.likelihood`):
``interval_count`` (r of n by t, cumulative counts at several times as successive intervals),
``marginal_count`` (a count or percentage whose denominator or time is not reported: integrated
over the admissible denominators and a stated window of follow-up times),
``quantile_time`` (medians and IQR quartiles, over all men or over recoverers; the density of the
order statistic), ``quantile_unknown_n`` (the same when the number of men behind the median is
not reported: integrated over 1 to the arm's size, or ``unknown_n_max``), ``mean_time``
(means among recoverers), ``restricted_mean`` (a mean over all men up to the follow-up: the
restricted mean, with the horizon integrated from the shortest follow-up when only that is
given), ``not_reached`` (median not reached by t) and ``individual_time`` (individual or
KM-reconstructed times). Rows no term can use are reported with their reason.

Priors (every one in ``DEFAULT_PRIORS``, meanings in ``PRIOR_NOTES``): median time scale
:math:`e^{\alpha}` centred on 6 months with log-sd 1 (so reference recovery times span weeks to a
few years), shape log-normal around the family default, non-recovery
:math:`\text{logit}^{-1}(\gamma)` centred on 10%, effects normal with the listed standard
deviations, threshold steps half-normal with Dirichlet weights, study SDs log-normal, covariate
population distributions normal / half-normal, missing fractions Beta.

Every observed term is ``weight * log-density`` with the weights a ``pm.Data`` of ones, so a
refit that leaves a study out changes data, not the graph.

Geometry: what changed, and why (measured on the real data, 2 cores, nutpie and numpyro)
-----------------------------------------------------------------------------------------
The earlier form of this model needed step sizes near 0.016 and about 300 leapfrog steps per
draw, and its fits failed the divergence gate depending on the seed. Each change below was
measured alone on the main analysis (``analysis/survival.yaml``); together they took the minimum
bulk ESS per second of sampling from 14-17 (numpyro, target_accept 0.99) to 158-178 (nutpie,
target_accept 0.98, no divergence on 3 seeds), with about 100 leapfrog steps per draw:

1. **Only parameters the data touch are sampled** (:mod:`~trt_recovery.survival.design`): 32 of
   105 parameters had no observation and came out as their priors; they are now drawn from
   those priors at prediction time (the same distribution, with a seed). No prior changed.
2. **The threshold ladder is sampled by segment**: only the Dirichlet weights of the ladder
   segments that end at observed thresholds enter NUTS (aggregation property of the Dirichlet;
   exact, tested against the step-by-step prior). No prior changed.
3. **"Own baseline" left the ladder** (a free threshold effect, like total motile count). As the
   top step of the ladder it was one eighth of the any-to-top shift a priori, while the data put
   it as far above 20 million/mL as 20 is above "any": a prior-data conflict that bent the
   posterior. A man's baseline is relative to him (below 20 million/mL for some fertile men), so
   it never belonged on a fixed concentration scale. This changes the model (and the schema).
4. **Quantiles** (:func:`~trt_recovery.survival.likelihood.quantile_logp`) were read for a
   while as "a share p recovered by the reported time" (a fractional binomial without the
   Jacobian of the quantile), which halved the leapfrog steps. Simulation-based calibration
   (``make sbc``) showed that this biased the Weibull shape down (every median pulled it by about
   a factor 1/shape), so the term is again the exact density of the order statistic; the
   geometry cost is measured in the note of issue 12 and in ``make bench``.
5. **A mean without an SD borrows one** from the coefficient of variation of the means that
   report an SD (:func:`impute_mean_sd`): with the model's own SD the term was degenerate and
   caused every divergence of the fit (ablation: removing that one observation removed them all).

Second round (2026-11-30, 25 rows; issue 16's note has every run). With the richer data the fit
needed 155-159 leapfrog steps per draw at target_accept 0.99 (step size 0.039) for 7.9-9.8
min-ESS per second of sampling, and its R-hat sat on the gate (1.004-1.011 over three seeds; one
failed). Ablations at target_accept 0.9 located the cause: three medians over all men of large
arms (Gu 2009, 1 045 men; WHO 1990, 157 men, at 20 million/mL and at the man's own baseline).
Without them: no divergence and twice the ESS per draw. Changes 6 and 7 together, measured in one
``make bench`` run against the code before them (nutpie, target_accept 0.99, the config's seed and
the next two): 21-24 min-ESS per second (2.1-3.1 times, seed by seed), 137 leapfrog steps per
draw, R-hat at most 1.0023 and no divergence on the three seeds. At target_accept 0.98 (about 100
steps, 25-30 ESS/s) two seeds had 1-2 divergences, so the config keeps 0.99.

6. **Anchored study effects** (:class:`AnchoredStudyEffect`, a change of coordinates: the same
   model and posterior, checked by ``tests/test_survival_model.py``). Such a median pins the arm's
   curve at the reported time, a thin ridge bent in the study effect and the shape. NUTS now
   samples the logit of the recoverers' curve at that time, which the median determines almost
   alone, and the study's time effect follows from it.
7. **Between-study SDs log-normal** (median 0.33, log-SD 0.65; before: half-normal, scale 0.5).
   The anchored coordinates are centred for those studies, which opened a funnel at small SDs:
   with anchors alone, the divergences (29-51 at target_accept 0.9) sat at SDs of 0.02-0.04. This
   is a prior change, stated as one: the data do not identify the between-study SDs (their
   posteriors were the half-normal prior, median 0.32 against the prior's 0.34), so the prior
   decides either way. The new prior keeps the old median (0.33 against 0.34) and upper range
   (95% quantile 0.96 against 0.98) and drops the near-zero mass (P(SD < 0.1): 0.03 against 0.16;
   P(SD < 0.05): 0.002 against 0.08): studies in different populations, countries, schedules and
   definitions are not expected to share one time scale within 10%. Zero-avoiding and log-normal
   priors for heterogeneity follow Chung et al. (Psychometrika 2013;78:685-709) and Turner et al.
   (Stat Med 2015;34:984-998). The sensitivity analysis with every scale doubled doubles the log-SD;
   that puts 7% of the SDs' prior below 0.05 again, so it samples in the plain coordinates
   (``anchor_min_men`` set out of reach): anchored, it had 14 divergences at target_accept 0.99.

Third round (2026-11-30; issue 16's note). The largest eigenvalue of the Hessian of the
negative log-density, scaled by the posterior SDs, at 60 posterior draws had median 207 and
reached 809, while the posterior correlation matrix has a condition number of only 56: the small
steps come from curvature that changes over the posterior, not from linear correlation a dense
mass matrix would remove. Along the stiffest direction (the log time scale of contraceptive
undecanoate arms) the curvature came mostly from Mommers 2008's mean over every man (3.9 months,
SE 0.12) and its median. So:

8. **A mean over every man up to a horizon anchors its study too** (:func:`anchor_rows`), when its
   SE is at most mean / sqrt(``anchor_min_men``), the precision of a mean of that many men with a
   coefficient of variation of 1 (Mommers 2008: about 1 100). Same transform, anchored at the
   reported mean; same model and posterior. One ``make bench`` run against the code before it
   (nutpie, target_accept 0.99, three seeds): 20-29 min-ESS per second against 17-20 (1.2-1.6
   times seed by seed), 127-134 leapfrog steps per draw against 137-138, no divergence.

Tried and not kept in this round: anchoring two smaller studies as well (Wenker 2015, 47 men;
Kohn 2017, 46 of 66 by 12 months) cut the steps to 43-52 at target_accept 0.95 but gave 9-15
divergences (Kohn's coordinate ran off: the non-recovery fraction, not the curve, explains its
non-recovered men). nutpie's low-rank mass matrix (``sampler.mass_matrix: low_rank``, compared by
``make bench``) halves the steps (65-71) but mixes worse per draw: 21-25 ESS/s in the same run
with one divergence on one seed at 0.99, and 18-23 ESS/s at 0.995 (87-101 steps, no
divergence). Earlier: a dense matrix (numpyro) diverged on some seeds at every target_accept
that kept it ahead in ESS per second.

Fourth round (2026-11-30; issue 16's note): the cost of one gradient, not the steps. Timed
alone (numba, as nutpie compiles it), one log-density and gradient took 75-80 us; removing one
term at a time showed the counts without a reported denominator or time taking about half of
it: one row with 417 candidate denominators (100% of up to 308 men) padded four rows of 8-25.
Change 9 keeps the likelihood (log-density and gradient equal to 1e-12 at random points); change
10 corrects the log-logistic one (up to 9e-5 in log-density at the same points):

9. **Count blocks cut by width** (:func:`width_groups`): rows are grouped by how many candidates
   they have, at least padded cost (2 085 grid cells became 517).
10. **Log-logistic moments** (a sensitivity family) on 64 Gauss-Legendre nodes, not 256, over a
    range that also holds for a horizon far below the scale (the old range lost up to 0.5% of
    the moment there: a correction, and its test).

Together (with :func:`~trt_recovery.survival.design.threshold_effect` vectorised): 64-68 us per
gradient on the main analysis against 75-80, 95 against 188-200 for the log-logistic fit. One
``make bench`` run against the code before (three seeds): sampling 71-84 s against 91-102 s,
31.8-40.0 min-ESS per second against 22.3-33.5, 132-135 leapfrog steps per draw, no divergence.
Tried and not kept: one gather for every term's rows (then a slice per term), another 10% off the
gradient with the same likelihood (to 1e-14), but on its rounding path the main fit at the
config's seed had one divergence (a draw in the tails; two sensitivity fits of that run failed a
gate too): these fits sit at the edge of the gates, so a change that only moves rounding can pass
or fail them, and the main fit's pass on the config's seed was kept.

Fifth round (2026-11-30; issue 16's note), tried and not kept. Gu 2009 reports only a median over
all men, which fixes :math:`(1 - \pi) F` at one half, so its anchored coordinate (the logit of
:math:`F`) climbs, with SD 0.32 and a tail to 3, as its non-recovery fraction grows towards one half:
a bent ridge with every non-recovery effect of the arm, where the divergences at target_accept
0.9-0.95 sat. Sampling instead about :math:`\operatorname{logit}((1 - \pi) F)` (SD 0.06; kept
below :math:`1 - \pi` by a smooth map) removed the ridge and most of those divergences (0.95: 1
against 7; 0.9: 4 against 11), at the same speed at 0.99 (``make bench``, three seeds: 40-52
min-ESS per second against 38-42). But in the refit the log-normal sensitivity fit had one
divergence, deep in Gu 2009's tail (its log time scale 4.8 SD below its mean), where the map
saturates. So that change (0571421) was reverted (69ce27d). A lesson for any coordinate that reads other parameters:
its first version (indexing the non-recovery effects, ``z[positions]``) had a wrong gradient in
nutpie's compiled model only (nutpie rewrites the graph, then makes each parameter a slice of one
vector), with every log-density right, and NUTS found no step size; a one-hot product avoided it.
``tests/test_survival_model.py`` now checks the sampler's gradient against finite differences.

Also tried and not kept (measured 2026-11-29 on the real data, one chain of 500 + 500, 2 cores):
holding every term's arrays (observed values, columns, candidate arrays, arm and threshold
positions) as ``pm.Data``, so that one compiled model could serve every SBC replication and
refit (:mod:`trt_recovery.compiled`). PyTensor can then no longer fold the data into constants:
against the same code with the arrays as constants, nutpie's compilation went from 71 s to 254 s
and sampling from 16 s to 40 s, so even a reused compiled model would have cost about as much per
replication as compiling each one (this model as it stands: 32 s and 14 s). Only the weights are
data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
from pymc.logprob.transforms import Transform

from trt_recovery.harmonise import mean_standard_error
from trt_recovery.models import register
from trt_recovery.models.base import (
    ModelData,
    ModelSpec,
    exclusion_frame,
    lazy,
    modelled_elsewhere,
    observed_term,
    resolve_overlaps,
    select_rows,
)
from trt_recovery.survival import design
from trt_recovery.survival import likelihood as lik
from trt_recovery.survival.families import FAMILIES, Family
from trt_recovery.survival.km import reconstruct_ipd

HORIZON_NONE = 1.0e4  # months: "no truncation" for means/medians among recoverers

DEFAULT_PRIORS: dict[str, float] = {
    "time_median_months": 6.0,
    "time_log_sd": 1.0,
    "shape_log_sd": 0.5,
    "cure_prior_prob": 0.1,
    "cure_logit_sd": 1.0,
    "strategy_time_sd": 0.5,
    "strategy_cure_sd": 0.75,
    "population_time_sd": 0.5,
    "population_cure_sd": 0.75,
    "threshold_step_time_scale": 1.0,
    "threshold_step_cure_scale": 1.0,
    "threshold_weight_concentration": 1.0,
    "threshold_free_sd": 1.0,
    "preparation_sd": 0.5,
    "covariate_time_sd": 0.3,
    "covariate_cure_sd": 0.5,
    "covariate_pop_mean_sd": 1.0,
    "covariate_pop_sd_scale": 1.0,
    "fraction_prior_a": 1.0,
    "fraction_prior_b": 1.0,
    "study_time_sd_median": 0.33,
    "study_cure_sd_median": 0.33,
    "study_sd_log_sd": 0.65,
    "unknown_followup_min_months": 3.0,
    "unknown_followup_max_months": 24.0,
    "unknown_n_max": 200.0,
    # sampling coordinates, not a prior: a study is anchored (:class:`AnchoredStudyEffect`) by its
    # largest median over all men of at least this many men, or a mean over every man up to a
    # horizon at least as precise (:func:`anchor_rows`). There the median's own precision on
    # the logit of the curve (about 2/sqrt(n), 0.2 at 100 men) is well inside the spread the study
    # effect's prior allows at that point (about 0.6 on the same scale at the prior median SD), the
    # case for a centred coordinate. The posterior is the same whatever the value.
    "anchor_min_men": 100.0,
}
PRIOR_NOTES: dict[str, str] = {
    "time_median_months": "prior median of the reference arm's time scale (months)",
    "time_log_sd": "SD of the log time-scale intercept",
    "shape_median": "prior median of the family's shape parameter",
    "shape_log_sd": "SD of the log shape",
    "cure_prior_prob": "prior centre of P(never recovers) in the reference arm (a probability in (0, 1))",
    "cure_logit_sd": "SD of the non-recovery logit intercept",
    "strategy_time_sd": "SD of each strategy's effect on log time (vs spontaneous recovery)",
    "strategy_cure_sd": "SD of each strategy's effect on the non-recovery logit",
    "population_time_sd": "SD of each population's effect on log time (vs TRT)",
    "population_cure_sd": "SD of each population's effect on the non-recovery logit",
    "threshold_step_time_scale": "half-normal scale of the total log-time shift from 'any sperm' to 'own baseline'",
    "threshold_step_cure_scale": "half-normal scale of the total logit shift from 'any sperm' to 'own baseline'",
    "threshold_weight_concentration": "Dirichlet concentration splitting the total shift over the ladder's steps",
    "threshold_free_sd": "SD of the effect of each unordered threshold (tmc5, improvement, ...)",
    "preparation_sd": "SD of each androgen preparation's effect on log time (vs short-ester injections)",
    "covariate_time_sd": "SD of a covariate's coefficient on log time (per model unit)",
    "covariate_cure_sd": "SD of a covariate's coefficient on the non-recovery logit",
    "covariate_pop_mean_sd": "SD of the population mean of a covariate (model scale) used to impute missing arms",
    "covariate_pop_sd_scale": "half-normal scale of a covariate's between-arm spread (model scale)",
    "fraction_prior_a": "Beta prior (a) of a missing fraction covariate (fraction azoospermic)",
    "fraction_prior_b": "Beta prior (b) of a missing fraction covariate",
    "study_time_sd_median": "prior median of the between-study SD on log time (log-normal prior)",
    "study_cure_sd_median": "prior median of the between-study SD on the non-recovery logit (log-normal prior)",
    "study_sd_log_sd": "SD of the log of each between-study SD",
    "unknown_followup_min_months": "shortest follow-up assumed for a count reported without its time (log-uniform window)",
    "unknown_followup_max_months": "longest follow-up assumed for a count reported without its time",
    "unknown_n_max": "largest denominator considered for a percentage reported without n, when the arm's size is unknown",
    "anchor_min_men": "sampling coordinates, not a prior (the posterior is the same): a study whose largest median "
                      "over all men has at least this many men (or a mean over every man up to a horizon with SE at "
                      "most mean/sqrt(this)) is sampled through its curve at that time",
}
#: candidate follow-up times of a count reported without its time
FOLLOWUP_GRID = 12


def log_uniform_grid(lo: float, hi: float, k: int = FOLLOWUP_GRID) -> np.ndarray:
    """``k`` equally weighted points standing for a log-uniform distribution on [lo, hi]: the
    midpoints (on the log scale) of ``k`` equal intervals. Not ``geomspace(lo, hi, k)``: giving
    the two ends a full weight each overweights them, and that biased the shape (measured with a
    mean over all men whose horizon is only bounded: 300 simulated rows, 8 replications, shape
    estimate 1.87 for a true 1.6 with the end points, 1.61 with the midpoints)."""
    edges = np.linspace(np.log(lo), np.log(hi), k + 1)
    return np.exp((edges[1:] + edges[:-1]) / 2)
COUNT_KINDS = ("recovered_count", "cumulative_proportion", "km_point")
#: ``predict`` value asking for the per-observation linear predictors
OBSERVATIONS = "observations"


# ------------------------------------------------------------------------------------------
# Likelihood terms: one per reporting format


@dataclass(frozen=True)
class Term:
    """A reporting format: its observed column, its other columns, and its log-density
    ``logp(observed, *columns, mu, shape, log_pi, log1m_pi, fam)`` from :mod:`~trt_recovery.survival.likelihood`."""

    name: str
    observed: str
    columns: tuple[str, ...]
    logp: Callable
    #: for a term with constant candidate arrays (built from its rows and the priors, not observed
    #: columns): ``bind(rows, priors, fam)`` returns ``logp(observed, *columns, mu, shape, log_pi,
    #: log1m_pi)`` with those arrays closed over
    bind: Callable | None = None

    def bound_logp(self, rows: pd.DataFrame, priors: dict[str, float], fam: Family) -> Callable:
        """The term's log-density as the model graph calls it (``fam`` and any constants bound)."""
        if self.bind is not None:
            return self.bind(rows, priors, fam)
        return lambda v, *args: self.logp(v, *args, fam)


def _bind_marginal_count(rows, priors, fam):
    blocks = marginal_blocks(rows, priors)
    return lambda v, m, k, lp, l1p: marginal_block_logp(blocks, m, k, lp, l1p, fam)


def _bind_quantile_unknown_n(rows, priors, fam):
    arr = quantile_size_arrays(rows, priors)
    return lambda v, p, oa, tau, m, k, lp, l1p: lik.quantile_unknown_n_logp(
        v, p, oa, tau, arr["sizes"], arr["log_w"], m, k, lp, l1p, fam)


def _bind_restricted_mean(rows, priors, fam):
    arr = restricted_mean_arrays(rows, priors)
    return lambda v, se, m, k, lp, l1p: lik.restricted_mean_logp(v, se, arr["log_w"], arr["tau_grid"], m, k, lp, l1p, fam)


TERMS: tuple[Term, ...] = (
    Term("interval_count", "events", ("at_risk", "t0", "t1"), lik.interval_count_logp),
    # denominator and/or time not reported: candidates built from the priors in ``marginal_arrays``
    Term("marginal_count", "proportion", (), lik.marginal_count_logp, bind=_bind_marginal_count),
    Term("quantile_time", "value", ("p", "size", "over_all", "tau"), lik.quantile_logp),
    # number of men not reported: candidates and weights built from the bound in ``quantile_size_arrays``
    Term("quantile_unknown_n", "value", ("p", "over_all", "tau"), lik.quantile_unknown_n_logp,
         bind=_bind_quantile_unknown_n),
    Term("mean_time", "value", ("size", "sd_reported", "has_sd", "tau"), lik.mean_time_logp),  # after impute_mean_sd
    Term("not_reached", "t", ("size",), lik.not_reached_logp),
    # a mean over all men up to a horizon: candidate horizons built in ``restricted_mean_arrays``
    Term("restricted_mean", "value", ("se",), lik.restricted_mean_logp, bind=_bind_restricted_mean),
    Term("individual_time", "time", ("event",), lik.individual_logp),
)
TERM_NAMES = tuple(t.name for t in TERMS)


# ------------------------------------------------------------------------------------------
# Data preparation


def _excl(rows: list[dict], r, reason: str) -> None:
    rows.append({"outcome_id": r.outcome_id, "arm_id": r.arm_id, "study_id": r.study_id, "reason": reason})


def _recoverers(df: pd.DataFrame, r) -> float:
    """Number of recoverers behind a recoverer summary: its own n, else a count row of the arm."""
    if not pd.isna(r.n):
        return float(r.n)
    same = df[(df.arm_id == r.arm_id) & (df.threshold == r.threshold) & df.outcome.isin(COUNT_KINDS)]
    same = same[same.events.notna()]
    return float(same.events.max()) if len(same) else np.nan


def _arm_size(r) -> float:
    if not pd.isna(r.n):
        return float(r.n)
    return float(r.arm_n) if not pd.isna(r.arm_n) else np.nan


def build_terms(df: pd.DataFrame) -> tuple[dict[str, pd.DataFrame], list[dict]]:
    """Turn harmonised rows into likelihood-term tables; every unusable row gets a reason."""
    excluded: list[dict] = []
    terms: dict[str, list[dict]] = {k: [] for k in TERM_NAMES}
    df = df.copy()
    for c in df.columns:  # pandas NA in string columns -> NaN, so comparisons are plain booleans
        if pd.api.types.is_string_dtype(df[c]) or df[c].dtype == object:
            df[c] = df[c].astype(object).where(df[c].notna(), np.nan)
    # individual times (given), and Kaplan-Meier curves with >= 3 points -> Guyot reconstruction
    for r in df[df.outcome == "individual"].itertuples():
        terms["individual_time"].append(
            dict(outcome_id=r.outcome_id, arm_id=r.arm_id, threshold=r.threshold, time=r.time_months, event=int(r.events))
        )
    km = df[(df.outcome == "km_point") & df.time_months.notna() & df.proportion.notna()]
    km_used: set[str] = set()
    for (arm, thr), g in km.groupby(["arm_id", "threshold"], sort=True):
        size = g["arm_n"].dropna()
        if len(g) < 3 or size.empty:
            continue
        ipd = reconstruct_ipd(g.time_months.to_numpy(float), 1.0 - g.proportion.to_numpy(float), [0.0], [int(size.iloc[0])])
        first = g.outcome_id.iloc[0]
        for k, rr in enumerate(ipd.itertuples()):
            terms["individual_time"].append(
                dict(outcome_id=first, arm_id=arm, threshold=thr, time=max(rr.time, 1e-3), event=int(rr.event), ipd_index=k)
            )
        km_used |= set(g.outcome_id)
    # counts (cumulative counts at several times for the same arm, threshold and n -> intervals)
    counts = df[df.outcome.isin(COUNT_KINDS) & ~df.outcome_id.isin(km_used)]
    complete = counts.time_months.notna() & counts.n.notna() & counts.events.notna()
    for r in counts[~complete].itertuples():
        has_count = not pd.isna(r.n) and not pd.isna(r.events)
        if not has_count and pd.isna(r.proportion):
            _excl(excluded, r, "neither a count of n nor a proportion")
            continue
        assumption = []
        if pd.isna(r.time_months):
            assumption.append("follow-up time not reported: integrated over the window of the priors")
        if not has_count:
            assumption.append("denominator not reported: integrated over the denominators the printed percentage admits")
        terms["marginal_count"].append(dict(
            outcome_id=r.outcome_id, arm_id=r.arm_id, threshold=r.threshold, time=r.time_months,
            n=float(r.n) if has_count else np.nan, events=float(r.events) if has_count else np.nan,
            proportion=float(r.events) / float(r.n) if has_count else float(r.proportion),
            decimals=r.printed_decimals, n_bound=r.arm_n if not pd.isna(r.arm_n) else np.nan,
            assumption="; ".join(assumption)))
    ok = counts[complete]
    for _, g in ok.groupby(["arm_id", "threshold"], sort=True):
        g = g.sort_values("time_months")
        sequential = g.n.nunique() == 1 and g.events.is_monotonic_increasing and len(g) > 1
        prev_t, prev_e = 0.0, 0
        for r in g.itertuples():
            n = int(r.n)
            if sequential:
                terms["interval_count"].append(
                    dict(outcome_id=r.outcome_id, arm_id=r.arm_id, threshold=r.threshold, t0=prev_t,
                         t1=r.time_months, at_risk=n - prev_e, events=int(r.events) - prev_e)
                )
                prev_t, prev_e = r.time_months, int(r.events)
            else:
                terms["interval_count"].append(
                    dict(outcome_id=r.outcome_id, arm_id=r.arm_id, threshold=r.threshold, t0=0.0,
                         t1=r.time_months, at_risk=n, events=int(r.events))
                )
    # times to recovery
    for r in df[df.outcome == "time_to_recovery"].itertuples():
        if r.value_unit != "months" or pd.isna(r.value):
            _excl(excluded, r, "time to recovery without a usable value")
            continue
        over_all = r.over == "all"
        if r.statistic == "mean":
            if over_all:
                row = _restricted_mean_row(r)
                if isinstance(row, str):
                    _excl(excluded, r, row)
                else:
                    terms["restricted_mean"].append(row)
                continue
            m = _recoverers(df, r)
            if not m > 0:
                _excl(excluded, r, "mean among recoverers without the number of recoverers")
                continue
            sd = np.nan
            if r.dispersion_type == "sd":
                sd = r.dispersion_value
            elif r.dispersion_type == "se":  # harmonise converts SE to SD only for concentrations
                sd = r.dispersion_value * np.sqrt(m)
            terms["mean_time"].append(
                dict(outcome_id=r.outcome_id, arm_id=r.arm_id, threshold=r.threshold, value=r.value, size=m,
                     sd_reported=0.0 if np.isnan(sd) else sd, has_sd=int(not np.isnan(sd)),
                     tau=r.time_months if not pd.isna(r.time_months) else HORIZON_NONE)
            )
        elif r.statistic == "median":
            size = _arm_size(r) if over_all else _recoverers(df, r)
            quantiles = [(0.5, r.value)]
            if r.dispersion_type == "iqr" and not pd.isna(r.lower) and not pd.isna(r.upper):
                quantiles += [(0.25, r.lower), (0.75, r.upper)]
            if not size > 0:  # the number of men is latent: at most the arm's men, else a stated maximum
                bound = r.arm_n if not pd.isna(r.arm_n) else np.nan
                for p, q in quantiles:
                    terms["quantile_unknown_n"].append(dict(
                        outcome_id=r.outcome_id, arm_id=r.arm_id, threshold=r.threshold, value=q, p=p,
                        over_all=int(over_all), tau=HORIZON_NONE, n_bound=bound,
                        assumption="number of men behind the median not reported: integrated over 1 to "
                                   + (f"{int(bound)} (the arm's men)" if not pd.isna(bound) else "the priors' unknown_n_max")))
                continue
            for p, q in quantiles:
                terms["quantile_time"].append(
                    dict(outcome_id=r.outcome_id, arm_id=r.arm_id, threshold=r.threshold, value=q, p=p,
                         size=size, over_all=int(over_all), tau=HORIZON_NONE)
                )
        else:
            _excl(excluded, r, f"time statistic {r.statistic!r} has no term")
    # median not reached
    for r in df[df.outcome == "median_not_reached"].itertuples():
        size = _arm_size(r)
        if pd.isna(r.time_months) or not size > 0:
            _excl(excluded, r, "'median not reached' without a time or n")
            continue
        terms["not_reached"].append(
            dict(outcome_id=r.outcome_id, arm_id=r.arm_id, threshold=r.threshold, t=r.time_months, size=size)
        )
    # everything else
    handled = set(COUNT_KINDS) | {"time_to_recovery", "median_not_reached", "individual"}
    for r in df[~df.outcome.isin(handled)].itertuples():
        _excl(excluded, r, f"outcome '{r.outcome}' is not a time-to-recovery format{modelled_elsewhere(r.outcome)}")
    frames = {}
    for k, v in terms.items():
        t = pd.DataFrame(v)
        if len(t):
            t["weight"] = 1.0
        frames[k] = t
    frames["mean_time"] = impute_mean_sd(frames["mean_time"])
    return frames, excluded


def _restricted_mean_row(r) -> dict | str:
    """The ``restricted_mean`` row of a mean over all men (term 8 of the likelihood module), or
    the reason no term can use it: it needs a horizon (the row's time) and a precision."""
    if pd.isna(r.time_months):
        return "a mean over all men without its follow-up horizon is undefined when some never recover; no term"
    se, source = mean_standard_error(r.dispersion_type, r.dispersion_value, r.lower, r.upper, r.n)
    if np.isnan(se):
        return "a mean over all men without its precision (no confidence interval, SE, or SD with n); no term"
    if not se > 0:
        return "a mean over all men with a zero-width confidence interval or SE; no term"
    minimum = r.time_stat == "min_followup"
    return dict(outcome_id=r.outcome_id, arm_id=r.arm_id, threshold=r.threshold, value=r.value, se=float(se),
                tau=r.time_months, horizon_is_minimum=int(minimum), se_source=source,
                assumption=("horizon not reported, only the shortest follow-up: integrated from it to the priors' "
                            "unknown_followup_max_months" if minimum else ""))


def restricted_mean_arrays(t: pd.DataFrame, priors: dict[str, float]) -> dict[str, np.ndarray]:
    """Candidate horizons (n_obs, K) and their log weights of each ``restricted_mean`` row: the
    row's time, or (a shortest follow-up) a log-uniform grid from it to the priors' maximum."""
    hi = priors["unknown_followup_max_months"]
    grid, log_w = np.ones((len(t), FOLLOWUP_GRID)), np.full((len(t), FOLLOWUP_GRID), -np.inf)
    for i, r in enumerate(t.itertuples()):
        if r.horizon_is_minimum and r.tau < hi:
            grid[i], log_w[i] = log_uniform_grid(r.tau, hi), -np.log(FOLLOWUP_GRID)
        else:
            grid[i], log_w[i, 0] = r.tau, 0.0
    return {"tau_grid": grid, "log_w": log_w}


def impute_mean_sd(t: pd.DataFrame) -> pd.DataFrame:
    """Give every mean without a reported SD one from the coefficient of variation (median SD/mean)
    of the means that report an SD (see :mod:`trt_recovery.survival.likelihood`, term 3).

    ``sd_source`` says where each SD comes from. With no reported SD in the fit, ``has_sd`` stays 0
    and the model imputes the coefficient of variation of its family at the prior median shape
    (a stated assumption, not a parameter: see :func:`fallback_cv`).
    """
    if not len(t):
        return t
    t = t.copy()
    reported = t["has_sd"] > 0
    t["sd_source"] = np.where(reported, "reported",
                              "imputed: coefficient of variation of the family at its prior median shape "
                              "(no mean in the fit reports an SD)")
    if reported.any() and (~reported).any():
        cv = float(np.median(t.loc[reported, "sd_reported"] / t.loc[reported, "value"]))
        donors = ", ".join(sorted(t.loc[reported, "outcome_id"]))
        t.loc[~reported, "sd_reported"] = cv * t.loc[~reported, "value"]
        t.loc[~reported, "has_sd"] = 1
        t.loc[~reported, "sd_source"] = f"imputed: coefficient of variation {cv:.3g} of {donors}"
    return t


def denominator_candidates(proportion: float, decimals: float, n_max: int) -> list[tuple[int, int]]:
    """(n, k) pairs with 1 <= n <= n_max for which k/n prints as the reported percentage.

    Printed at ``decimals`` decimals, by rounding or by truncation (both are seen in reports).
    """
    target = 100.0 * proportion
    d = 0 if pd.isna(decimals) else int(decimals)
    step = 10.0 ** -d
    out = []
    for n in range(1, int(n_max) + 1):
        for k in range(max(0, int(np.floor(proportion * n)) - 1), min(n, int(np.ceil(proportion * n)) + 1) + 1):
            pct = 100.0 * k / n
            if abs(pct - target) <= step / 2 + 1e-9 or 0 <= pct - target < step - 1e-12:
                out.append((n, k))
    return out


def marginal_arrays(t: pd.DataFrame, priors: dict[str, float]) -> dict[str, np.ndarray]:
    """Candidate (k, n) pairs with their log prior weights, and the time grid, of each
    ``marginal_count`` row (see :func:`~trt_recovery.survival.likelihood.marginal_count_logp`).

    Each admissible denominator is equally likely; the pairs of one denominator share its weight.
    A row without a time gets a log-uniform grid over the priors' window; a row with a time gets
    that time at every grid point.
    """
    lo, hi = priors["unknown_followup_min_months"], priors["unknown_followup_max_months"]
    cands, grids = [], []
    for r in t.itertuples():
        if not pd.isna(r.n):
            c = [(int(r.n), int(r.events), 0.0)]
        else:
            bound = int(r.n_bound) if not pd.isna(r.n_bound) else int(priors["unknown_n_max"])
            pairs = denominator_candidates(r.proportion, r.decimals, bound)
            if not pairs:
                raise ValueError(f"{r.outcome_id}: no denominator up to {bound} reproduces {100 * r.proportion:g}%")
            per_n = pd.Series([n for n, _ in pairs]).value_counts()
            n_dens = len(per_n)
            c = [(n, k, -np.log(n_dens) - np.log(per_n[n])) for n, k in pairs]
        cands.append(c)
        grids.append(np.full(FOLLOWUP_GRID, r.time) if not pd.isna(r.time)
                     else log_uniform_grid(lo, hi))
    width = max(len(c) for c in cands)
    events = np.zeros((len(t), width))
    at_risk = np.zeros((len(t), width))
    log_w = np.full((len(t), width), -np.inf)
    for i, c in enumerate(cands):
        for j, (n, k, w) in enumerate(c):
            at_risk[i, j], events[i, j], log_w[i, j] = n, k, w
    return {"events": events, "at_risk": at_risk, "log_w": log_w, "t_grid": np.vstack(grids)}


def size_candidates(bound: int, exact_up_to: int = 20, buckets: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Candidate numbers of men 1..``bound`` and their log prior weights (uniform over integers):
    every integer up to ``exact_up_to``, then ``buckets`` geometric buckets, each represented by its
    middle integer and weighted by the integers it holds."""
    bound = max(int(bound), 1)
    if bound <= exact_up_to + buckets:
        sizes = np.arange(1, bound + 1, dtype=float)
        return sizes, np.full(len(sizes), -np.log(bound))
    edges = np.unique(np.round(np.geomspace(exact_up_to + 1, bound + 1, buckets + 1)).astype(int))
    mids = [(lo + hi - 1) / 2.0 for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    counts = np.diff(edges)
    sizes = np.concatenate([np.arange(1, exact_up_to + 1, dtype=float), np.round(mids)])
    weights = np.concatenate([np.ones(exact_up_to), counts]) / bound
    return sizes, np.log(weights)


def quantile_size_arrays(t: pd.DataFrame, priors: dict[str, float]) -> dict[str, np.ndarray]:
    """Candidate sizes (n_obs, K) and log weights of each ``quantile_unknown_n`` row (padding -inf)."""
    cands = [size_candidates(int(r.n_bound) if not pd.isna(r.n_bound) else int(priors["unknown_n_max"]))
             for r in t.itertuples()]
    width = max(len(c[0]) for c in cands)
    sizes, log_w = np.ones((len(t), width)), np.full((len(t), width), -np.inf)
    for i, (sz, w) in enumerate(cands):
        sizes[i, :len(sz)], log_w[i, :len(w)] = sz, w
    return {"sizes": sizes, "log_w": log_w}


#: cost of one more block of ``marginal_count`` rows, in grid cells (``rows x candidates x times``), a
#: rough figure: on the survival model 37 of the 75 us of a gradient went to 2 085 padded cells
#: (0.018 us a cell), and one more block added 86 graph nodes (forward and gradient), taken as
#: about 4 us. Any value from 45 to 1 568 cuts the real data the same way.
BLOCK_COST_CELLS = 200


def width_groups(widths: np.ndarray, cells_per_slot: int = 1, block_cost: float = BLOCK_COST_CELLS) -> list[np.ndarray]:
    """Partition rows into groups that are padded to their widest row, at least cost.

    ``widths[i]`` is row i's number of candidates; a group of rows costs ``len(group) *
    max(width) * cells_per_slot + block_cost``. Rows are sorted by width and cut into contiguous
    runs by dynamic programming (exact for this cost: an optimal partition never interleaves
    widths). Returns the groups as arrays of row positions, narrowest first.
    """
    order = np.argsort(widths, kind="stable")
    w = np.asarray(widths, dtype=float)[order]
    n = len(w)
    best = np.full(n + 1, np.inf)
    best[0], cut = 0.0, np.zeros(n + 1, dtype=int)
    for j in range(1, n + 1):  # best[j]: rows order[:j] grouped; the last group is order[i:j]
        for i in range(j):
            cost = best[i] + (j - i) * w[j - 1] * cells_per_slot + block_cost
            if cost < best[j]:
                best[j], cut[j] = cost, i
    groups, j = [], n
    while j > 0:
        groups.append(order[cut[j]:j])
        j = cut[j]
    return groups[::-1]


def marginal_blocks(t: pd.DataFrame, priors: dict[str, float]) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """:func:`marginal_arrays` split into blocks of rows of one kind, each trimmed to what it needs.

    Rows with a known time need one grid point, not ``FOLLOWUP_GRID`` copies of it; rows with a
    known count need one (k, n) pair, not the padding of the widest candidate list. Blocks: (known
    time?, known count?), each cut further by :func:`width_groups` so that a row with a few
    candidates is not padded to the width of one with hundreds. The marginal likelihood is
    unchanged (the padding has weight 0 and the repeated grid points the same value); on the real
    data (12 rows) 60 000 padded grid cells became about 2 170 with the first split and 601 with
    the second (the survival model's gradient: 75 to 64 us).

    Returns a list of (row positions, arrays) with ``arrays`` as in :func:`marginal_arrays`.
    """
    arr = marginal_arrays(t, priors)
    known_time = t["time"].notna().to_numpy()
    known_n = t["n"].notna().to_numpy()
    n_cands = np.isfinite(arr["log_w"]).sum(axis=1)
    blocks = []
    for kt in (True, False):
        for kn in (True, False):
            kind = np.flatnonzero((known_time == kt) & (known_n == kn))
            for group in width_groups(n_cands[kind], 1 if kt else FOLLOWUP_GRID):
                idx = kind[group]
                width = int(n_cands[idx].max())
                order = np.argsort(~np.isfinite(arr["log_w"][idx]), axis=1, kind="stable")[:, :width]
                take = lambda a: np.take_along_axis(a[idx], order, axis=1)  # noqa: E731,B023
                grid = arr["t_grid"][idx][:, :1] if kt else arr["t_grid"][idx]
                blocks.append((idx, {"events": take(arr["events"]), "at_risk": take(arr["at_risk"]),
                                     "log_w": take(arr["log_w"]), "t_grid": grid}))
    return blocks


def marginal_block_logp(blocks, mu, shape, log_pi, log1m_pi, fam: Family):
    """Per-row marginal log-likelihood of :func:`marginal_blocks`, in the rows' original order."""
    lib = pt if any(isinstance(x, pt.TensorVariable) for x in (mu, shape, log_pi)) else np
    parts, positions = [], []
    for idx, a in blocks:
        arrs = {k: (pt.as_tensor(v) if lib is pt else v) for k, v in a.items()}
        parts.append(lik.marginal_count_logp(arrs["events"], arrs["at_risk"], arrs["log_w"], arrs["t_grid"],
                                             mu[idx], shape, log_pi[idx], log1m_pi[idx], fam))
        positions.append(idx)
    inverse = np.argsort(np.concatenate(positions))
    return (pt.concatenate(parts) if lib is pt else np.concatenate(parts))[inverse]


def fallback_cv(fam: Family, shape_median: float) -> float:
    """Coefficient of variation of the family at the prior median shape (scale-free in an AFT family)."""
    m1, sd = lik.recoverer_moments(HORIZON_NONE, 0.0, shape_median, fam)
    return float(sd / m1)


def prepare(harmonised: pd.DataFrame, selection) -> ModelData:
    df, excluded = select_rows(harmonised, selection)
    df, overlap = resolve_overlaps(df)
    excluded += overlap
    terms, term_excl = build_terms(df)
    excluded += term_excl
    used_ids = sorted({oid for t in terms.values() if len(t) for oid in t["outcome_id"]})
    used = df[df.outcome_id.isin(used_ids)].reset_index(drop=True)
    arms = design.arm_table(used) if len(used) else pd.DataFrame()
    thresholds = [t for tab in terms.values() if len(tab) for t in tab["threshold"]]
    coords = design.coords_for(arms, thresholds) if len(arms) else {}
    for name, t in terms.items():
        coords[f"{name}_obs"] = t["outcome_id"].astype(str).add("#").add(t.index.astype(str)).tolist() if len(t) else []
    return ModelData(used=used, exclusions=exclusion_frame(excluded), coords=coords, arms=arms, terms=terms)


def anchor_rows(terms: dict[str, pd.DataFrame], arms: pd.DataFrame, min_men: float) -> pd.DataFrame:
    """Each anchored study's anchor (:class:`AnchoredStudyEffect`): of the rows that pin an arm's
    whole curve at one time, the study's most precise, if it is at least as precise as a median of
    ``min_men`` men (the first such row on ties). Candidates:

    * a ``quantile_time`` row over all men, of ``size`` men, anchored at the reported time;
    * a ``restricted_mean`` row (a mean over every man up to a horizon), anchored at the reported
      mean; its precision counts as ``(value / se)**2`` men, what a mean of that many men with a
      coefficient of variation of 1 would give (Mommers 2008: 3.9 months, SE 0.12, about 1 100).

    Columns ``study_id``, ``arm_id``, ``threshold``, ``value`` (the anchor's time), ``men``; one row
    per anchored study, in the order of the studies' names."""
    columns = ["study_id", "arm_id", "threshold", "value", "men"]
    parts = []
    t = terms.get("quantile_time")
    if t is not None and len(t):
        t = t[t["over_all"] > 0]
        parts.append(t.assign(men=t["size"].astype(float))[columns[1:]])
    t = terms.get("restricted_mean")
    if t is not None and len(t):
        parts.append(t.assign(men=(t["value"] / t["se"]) ** 2)[columns[1:]])
    if not parts:
        return pd.DataFrame(columns=columns)
    t = pd.concat(parts, ignore_index=True)
    t = t[t["men"] >= min_men]
    t = t.assign(study_id=arms.loc[t["arm_id"], "study_id"].to_numpy())
    t = t.sort_values(["study_id", "men"], ascending=[True, False], kind="stable").drop_duplicates("study_id")
    return t[columns].reset_index(drop=True)


class AnchoredStudyEffect(Transform):
    r"""Sample an anchored study's time effect through the curve at its anchor: a change of
    coordinates, not a change of model.

    A median over all men of a large arm pins that arm's curve at the reported time to one half
    within about :math:`1/\sqrt{n}`. In the study effect :math:`z_s` (and the shape, the
    non-recovery fraction and every effect of the arm) that is a thin ridge, bent by the shape,
    which forced NUTS to tiny steps (issue 16's note measured it). For an anchored study NUTS
    samples instead :math:`u_s = \operatorname{logit} F(\hat q_s;\ \mu_s, k)`, the recoverers'
    distribution function at the anchor's time, which the median determines almost alone (where
    the non-recovery fraction is small), and

    .. math:: z_s = \big(\mu(\hat q_s, u_s, k) - r_s\big) / \sigma

    with :math:`\mu(\cdot)` the family's :meth:`~trt_recovery.survival.families.Family.log_scale_at`
    and :math:`r_s` the anchor row's log time scale without the study effect. The log-density gains
    :math:`\log|\partial z_s / \partial u_s|` (PyTensor's gradient of the map), so the prior of
    :math:`z_s` stays :math:`N(0, 1)` and the posterior is the same: draws of ``study_time_z`` are
    draws of the same distribution, and prior draws are generated as before. The map depends on
    other parameters (:math:`k, \sigma, r_s`), which is allowed: the Jacobian of
    :math:`(u, \theta) \mapsto (z, \theta)` is triangular, its determinant the diagonal's. Other
    studies: identity. ``tests/test_survival_model.py`` checks the density against the plain
    model's plus the Jacobian (by finite differences) at prior draws.

    Anchoring the non-recovery effect as well (sampling the logit of the whole curve at the anchor
    and the share of the men not recovered by then who never recover) was tried and not kept: the
    median says little about that share, so its centred coordinate opened a funnel at small
    between-study SDs of the non-recovery logit (20 divergences at target_accept 0.95 against 5).

    Parameters
    ----------
    positions : array of int
        Positions of the anchored studies in the ``study`` dimension.
    times : array
        Each anchor's reported time :math:`\hat q_s` (months).
    rest : tensor
        Each anchor row's log time scale without its study effect.
    sd, shape : tensor
        Between-study SD of log time, and the family's shape.
    family : Family
    model : pm.Model
        The model being built, before any study effect is declared.
    """

    name = "anchored"  # PyMC names the sampled variable "study_time_z_anchored__" (no "_" in a transform name)
    ndim_supp = 0

    def __init__(self, positions, times, rest, sd, shape, family: Family, model: pm.Model):
        self.positions = np.asarray(positions, dtype=int)
        self.times, self.family = pt.as_tensor(np.asarray(times, float)), family
        # backward and the Jacobian are written in the value variables, as the log-density is
        self.value_inputs = tuple(model.replace_rvs_by_values([rest, sd, shape]))
        # forward is what PyMC places the initial point through; it maps z to u at the other
        # parameters' own initial values (with the random variables themselves, PyMC's
        # initial-point function would draw them, unseeded)
        at_start = model.compile_fn(list(self.value_inputs), inputs=model.value_vars, on_unused_input="ignore")
        self.start_inputs = tuple(pt.as_tensor(np.asarray(v, float)) for v in at_start(model.initial_point()))

    def backward(self, value, *inputs):
        rest, sd, shape = self.value_inputs
        mu = self.family.log_scale_at(self.times, value[self.positions], shape)
        return pt.set_subtensor(value[self.positions], (mu - rest) / sd)

    def forward(self, value, *inputs):
        rest, sd, shape = self.start_inputs
        mu = rest + sd * value[self.positions]
        logit_f = self.family.log_cdf(self.times, mu, shape) - self.family.log_sf(self.times, mu, shape)
        return pt.set_subtensor(value[self.positions], logit_f)

    def log_jac_det(self, value, *inputs):
        return pt.log(pt.abs(pt.grad(pt.sum(self.backward(value)), value)))


# ------------------------------------------------------------------------------------------
# Model


def make_build(fam: Family):
    def build(data: ModelData, priors: dict[str, float], predict: pd.DataFrame | None = None) -> pm.Model:
        """Build the mixture-cure AFT model (equations in the module docstring).

        ``predict``: rows to predict (:func:`trt_recovery.survival.design.profile_table`): the
        model then also holds the prediction variables of :func:`~trt_recovery.survival.design.prediction_block`;
        or :data:`OBSERVATIONS`: each term's per-observation ``<term>_time_logscale`` and
        ``<term>_cure_logit`` (for posterior predictive checks).
        """
        arms, coords = data.arms, data.coords
        if arms is None or len(arms) == 0:
            raise ValueError("survival model: no usable observation")
        fit_coords = {k: v for k, v in coords.items() if not k.endswith("_obs") or v}
        fit_coords = {k: v for k, v in fit_coords.items() if v or k in ("arm", "study", "threshold_segment")}
        with pm.Model(coords=fit_coords) as model:
            par = design.declare_parameters(priors, coords, fam.shape_variable)
            included = design.included_covariates(arms)
            x, coefs = design.declare_arm_covariates(arms, priors, included)
            par.update(coefs)
            arm_mu, arm_eta = design.linear_predictors(par, arms, coords, x)  # without the study effects
            anchors = anchor_rows(data.terms, arms, priors["anchor_min_men"])
            transform = None
            if len(anchors):
                free, segs = coords["threshold_free"], coords["threshold_segment"]
                rest = arm_mu[[arms.index.get_loc(a) for a in anchors["arm_id"]]] + design.threshold_effect(
                    anchors["threshold"].tolist(), par["threshold_time_step"], par.get("threshold_time_free"), free, segs)
                positions = [coords["study"].index(s_) for s_ in anchors["study_id"]]
                transform = lambda kind, sd: AnchoredStudyEffect(  # noqa: E731
                    positions, anchors["value"].to_numpy(float), rest, sd, par["shape"], fam, model) if kind == "time" else None
            study = design.declare_study_effects(priors, transform)
            study_idx = pd.Categorical(arms["study_id"], categories=coords["study"]).codes
            (sd_t, z_t), (sd_c, z_c) = study["time"], study["cure"]
            arm_mu = arm_mu + sd_t * z_t[study_idx]
            arm_eta = arm_eta + sd_c * z_c[study_idx]
            arm_mu = pm.Deterministic("arm_time_logscale", arm_mu, dims="arm")
            arm_eta = pm.Deterministic("arm_cure_logit", arm_eta, dims="arm")
            arm_pos = {a: i for i, a in enumerate(arms.index)}
            free, segs = coords["threshold_free"], coords["threshold_segment"]
            for term in TERMS:
                t = data.terms.get(term.name)
                if t is None or not len(t):
                    continue
                a = np.array([arm_pos[x_] for x_ in t["arm_id"]])
                thr = t["threshold"].tolist()
                mu = arm_mu[a] + design.threshold_effect(thr, par["threshold_time_step"], par.get("threshold_time_free"),
                                                         free, segs)
                eta = arm_eta[a] + design.threshold_effect(thr, par["threshold_cure_step"], par.get("threshold_cure_free"),
                                                           free, segs)
                weight = pm.Data(f"{term.name}_weight", t["weight"].to_numpy(float), dims=f"{term.name}_obs")
                if term.name == "mean_time" and (t["has_sd"] == 0).any():
                    cv = fallback_cv(fam, priors["shape_median"])
                    t = t.assign(sd_reported=np.where(t["has_sd"] > 0, t["sd_reported"], cv * t["value"]), has_sd=1)
                columns = [t[c].to_numpy(float) for c in term.columns]
                observed_term(
                    term.name,
                    term.bound_logp(t, priors, fam),
                    t[term.observed].to_numpy(float),
                    [*columns, mu, par["shape"], -pt.softplus(-eta), -pt.softplus(eta)],
                    weight,
                    f"{term.name}_obs",
                )
                if isinstance(predict, str) and predict == OBSERVATIONS:
                    pm.Deterministic(f"{term.name}_time_logscale", mu, dims=f"{term.name}_obs")
                    pm.Deterministic(f"{term.name}_cure_logit", eta, dims=f"{term.name}_obs")
            if predict is not None and not isinstance(predict, str):
                design.prediction_block(par, coords, priors, predict, x, included, study)
        return model

    return build


for _fam in FAMILIES.values():
    register(
        ModelSpec(
            name=f"survival_cure_{_fam.name}",
            description=f"Hierarchical mixture-cure AFT model ({_fam.name}) of time to recovery, all reporting formats",
            default_priors={**DEFAULT_PRIORS, "shape_median": _fam.shape_prior[0]},
            prepare=prepare,
            build=make_build(_fam),
            headline=lazy("trt_recovery.survival.report:headline"),
            reporter=lazy("trt_recovery.survival.report:report_fit"),
            source_modules=(
                "trt_recovery.models.survival_cure", "trt_recovery.models.base", "trt_recovery.survival.design",
                "trt_recovery.survival.likelihood", "trt_recovery.survival.families", "trt_recovery.survival.km",
            ),
            family=_fam.name,
            prior_notes=PRIOR_NOTES,
        )
    )
