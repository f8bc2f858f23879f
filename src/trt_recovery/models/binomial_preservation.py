r"""Hierarchical binomial model of sperm output kept during ongoing androgen (preservation).

Strategies taken while testosterone or steroids continue (low-dose hCG, FSH, hCG + FSH, or
staying on testosterone alone) answer a different question from a restart after stopping: does
sperm output stay at or above a threshold while the androgen goes on? For arm :math:`j`,
:math:`r_j` of :math:`n_j` men kept sperm at or above the arm's threshold at the end of its
follow-up on therapy (``preserved_count``, or ``preserved_proportion`` with a reported
denominator):

.. math::

    r_j &\sim \operatorname{Binomial}(n_j, \pi_j) \\
    \operatorname{logit} \pi_j &= \mu_{k(j)} + \gamma_{p(j)} + \theta_{h(j)} + \sigma_{\text{study}}\, z_{s(j)}

with the strategy, population, threshold and study terms and priors of
:mod:`trt_recovery.models.binomial_success` (same equations, same threshold ladder), so the two
analyses read alike. ``cell_rate[k, p]`` is the share of men who keep any sperm in an average
study; the comparison that matters is against ``continued_trt`` (androgen alone), reported as a
contrast by :mod:`trt_recovery.success`.

Why a separate model and not a term of the survival model: "kept at t while on therapy" is a
statement about a suppression process that is still running, with no time of stopping; putting it
into a recovery-time curve would mix two hazards. Time on therapy is not a covariate: the counts
are at 3 to 6 months or at an unstated end of follow-up, too few to estimate a slope (each row's
time is shown beside it in the table and figure).
"""

from __future__ import annotations

from trt_recovery.models import register
from trt_recovery.models.base import ModelSpec, lazy
from trt_recovery.models.binomial_success import DEFAULT_PRIORS, PRIOR_NOTES, build, prepare_counts

NAME = "binomial_preservation"
PRESERVED_OUTCOMES = ("preserved_count", "preserved_proportion")
#: the comparator every during-therapy strategy is contrasted with
REFERENCE_STRATEGY = "continued_trt"

SPEC = register(
    ModelSpec(
        name=NAME,
        description="Hierarchical binomial model of sperm output kept during ongoing androgen (strategy, population, "
                    "threshold and study effects)",
        default_priors=dict(DEFAULT_PRIORS),
        prepare=prepare_counts(PRESERVED_OUTCOMES, "count of men who kept sperm during therapy"),
        build=build,
        headline=lazy("trt_recovery.success:headline"),
        reporter=lazy("trt_recovery.success:report_preservation"),
        source_modules=("trt_recovery.models.binomial_preservation", "trt_recovery.models.binomial_success",
                        "trt_recovery.models.base", "trt_recovery.survival.design"),
        prior_notes=dict(PRIOR_NOTES),
    )
)
