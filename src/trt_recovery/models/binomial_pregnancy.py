r"""Hierarchical binomial model of pregnancy after treatment: a separate pooled analysis.

For arm :math:`j`, :math:`r_j` of :math:`n_j` men (or couples, or courses: the source's own
denominator, named in each row's note) achieved a pregnancy by the end of the arm's follow-up:

.. math::

    r_j &\sim \operatorname{Binomial}(n_j, \pi_j) \\
    \operatorname{logit} \pi_j &= \mu_{k(j)} + \gamma_{p(j)} + \sigma_{\text{study}}\, z_{s(j)}

with the strategy, population and study terms and priors of
:mod:`trt_recovery.models.binomial_success` (same equations, so the tables read alike). A
pregnancy has no sperm threshold, so the threshold term of that model is absent here (no row
carries a threshold, and no threshold parameter exists).

Why a separate pooled analysis and not a second stage of the survival model (conception after
recovery, fitted jointly): a second stage needs, per arm, when men recovered and when their
partners conceived, or at least pregnancies by a stated time after recovery. No pregnancy row in
the data reports a time since recovery (the rows of every study but one give no time at all;
that one, Al Hashimi 2022, counts pregnancies 12 months after stopping), and the denominators differ by source (all men treated, men trying to conceive,
men who reached spermatogenesis, treatment courses). A joint model would identify the
conception rate only through its prior, and its pregnancy curve would restate the recovery curve.
A pooled proportion per strategy and population, read as "pregnancy by the end of the study's
follow-up, among the men the study counted", is what these rows support; the table keeps each
row's denominator and time beside it. Most rows come from men with hypogonadotropic hypogonadism
treated with gonadotropins (population ``hh``): indirect evidence for men stopping androgens,
marked so by the certainty rules.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trt_recovery.models import register
from trt_recovery.models.base import ModelData, ModelSpec, lazy
from trt_recovery.models.binomial_success import DEFAULT_PRIORS, PRIOR_NOTES, REFERENCE_THRESHOLD, build, prepare_counts

NAME = "binomial_pregnancy"
PREGNANCY_OUTCOMES = ("pregnancy",)
#: the priors of the threshold term are not used (no threshold parameter in this model)
UNUSED_PRIORS = ("threshold_total_scale", "threshold_weight_concentration", "threshold_free_sd")

_choose = prepare_counts(PREGNANCY_OUTCOMES, "pregnancy count")


def prepare(harmonised: pd.DataFrame, selection) -> ModelData:
    """One pregnancy count per arm (latest time; rows without n or events excluded with their reason).

    Pregnancy rows have no threshold. The shared binomial ``prepare`` orders an arm's rows by
    threshold first, so they pass through it at the reference threshold (which adds no parameter)
    and leave with the threshold empty again.
    """
    is_preg = harmonised["outcome"].isin(PREGNANCY_OUTCOMES)
    marked = harmonised.assign(threshold=harmonised["threshold"].where(~is_preg, REFERENCE_THRESHOLD))
    md = _choose(marked, selection)
    md.used["threshold"] = np.nan
    md.coords.update({"threshold_segment": [], "threshold_free": []})
    return md


SPEC = register(
    ModelSpec(
        name=NAME,
        description="Hierarchical binomial model of pregnancy by the end of follow-up (strategy, population and "
                    "study effects)",
        default_priors={k: v for k, v in DEFAULT_PRIORS.items() if k not in UNUSED_PRIORS},
        prepare=prepare,
        build=build,
        headline=lazy("trt_recovery.success:headline"),
        reporter=lazy("trt_recovery.success:report_pregnancy"),
        source_modules=("trt_recovery.models.binomial_pregnancy", "trt_recovery.models.binomial_success",
                        "trt_recovery.models.base", "trt_recovery.survival.design"),
        prior_notes={k: v for k, v in PRIOR_NOTES.items() if k not in UNUSED_PRIORS},
    )
)
