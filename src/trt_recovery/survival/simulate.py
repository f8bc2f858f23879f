"""Simulate men from known parameters and report them in the same formats as the real studies.

Used by the parameter-recovery tests and by ``python -m trt_recovery.survival.recovery_study``.
The same code makes the summaries and the test data: each simulated arm draws individual men
(non-recovery with probability pi, otherwise a recovery time from the family), then reports one
of the formats found in the dataset: r of n recovered by t, cumulative percentages at several
times, a Kaplan-Meier median over all men, a median or mean among recoverers, "median not
reached by t", or individual times censored at the end of follow-up. The result is a table with
the columns of the harmonised outcome table, so :func:`trt_recovery.models.survival_cure.prepare`
runs on it unchanged. Each arm's log time scale and non-recovery logit come from
:func:`trt_recovery.survival.design.linear_predictors` with the true parameter values (the same
function the model's graph uses).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trt_recovery.harmonise import HARMONISED_COLUMNS, Z95
from trt_recovery.schema import load_schema
from trt_recovery.survival import design
from trt_recovery.survival.families import get_family

FORMATS = ("count", "cumulative", "km_median", "recoverer_median", "recoverer_mean", "not_reached", "individual",
           "count_no_time", "percent_no_n")
#: every format, including those the default cycle leaves out so that the test data stay as they were
#: (``median_no_n``: a median over all men without the number of men behind it, the
#: ``quantile_unknown_n`` term; ``mean_all_min_followup``: a mean over all men with its 95% CI,
#: every man followed for an unreported horizon of at least 6 months, the ``restricted_mean``
#: term); the parameter-recovery study uses these
ALL_FORMATS = FORMATS + ("median_no_n", "mean_all_min_followup")
#: follow-up window of counts reported without their time (as the model's default priors)
UNKNOWN_FOLLOWUP = (3.0, 24.0)
#: shortest follow-up stated with a simulated mean over all men (its horizon lies between it and 24 months)
MIN_FOLLOWUP = 6.0


@dataclass
class Truth:
    """True parameter values (names as in the model)."""

    time_intercept: float = np.log(5.0)
    shape: float = 1.6
    cure_intercept: float = -2.2
    strategy_time: dict[str, float] = field(default_factory=lambda: {"hcg_serm": -0.4, "hcg_fsh": -0.2})
    strategy_cure: dict[str, float] = field(default_factory=lambda: {"hcg_serm": -0.5, "hcg_fsh": 0.0})
    population_time: dict[str, float] = field(default_factory=lambda: {"contraception": 0.3})
    #: step of the threshold ladder ending at the named threshold (the shift from its predecessor)
    threshold_time_step: dict[str, float] = field(default_factory=lambda: {"20": 0.5})
    study_time_sd: float = 0.25
    study_cure_sd: float = 0.3

    def parameters(self) -> tuple[dict, dict[str, list[str]]]:
        """The truth as the parameter mapping and level order of :func:`design.linear_predictors`."""
        levels = {f.name: f.free_levels() for f in design.FACTORS}
        levels["threshold_free"] = []
        # every ladder step its own segment: the truth is given step by step
        levels["threshold_segment"] = [label for label, _ in design.ladder_segments(load_schema().threshold_ladder)]
        par: dict = {"time_intercept": self.time_intercept, "cure_intercept": self.cure_intercept}
        for attr, factor in (("strategy_time", "strategy"), ("strategy_cure", "strategy"),
                             ("population_time", "population")):
            effects = getattr(self, attr)
            par[attr] = np.array([effects.get(lv, 0.0) for lv in levels[factor]])
        steps = list(load_schema().threshold_ladder[1:])
        par["threshold_time_step"] = np.array([self.threshold_time_step.get(t, 0.0) for t in steps])
        par["threshold_cure_step"] = np.zeros(len(steps))
        return par, levels


def simulate_studies(n_studies: int, seed: int, family: str = "weibull", truth: Truth | None = None,
                     formats: tuple[str, ...] = FORMATS) -> tuple[pd.DataFrame, Truth]:
    """Simulate ``n_studies`` one-arm studies, cycling through strategies, populations and formats."""
    truth = truth or Truth()
    fam = get_family(family)
    rng = np.random.default_rng(seed)
    strategies = ["none", "hcg_serm", "hcg_fsh"]
    populations = ["trt", "contraception"]
    par, levels = truth.parameters()
    rows = []
    for i in range(n_studies):
        sid = f"sim{1000 + i}"
        aid = f"{sid}_a"
        strat = strategies[i % len(strategies)]
        pop = populations[(i // len(strategies)) % len(populations)]
        fmt = formats[i % len(formats)]
        threshold = "20" if (i % 4 == 3 and fmt in ("count", "km_median")) else "any"
        z, w = rng.standard_normal(2)
        arm = pd.DataFrame({"strategy": [strat], "population": [pop], "preparation": ["short_ester_injection"]})
        mu, eta = design.linear_predictors(par, arm, levels, {}, [threshold],
                                           study_time=truth.study_time_sd * z, study_cure=truth.study_cure_sd * w)
        mu, eta = float(mu[0]), float(eta[0])
        n = int(rng.integers(40, 160))
        never = rng.uniform(size=n) < 1 / (1 + np.exp(-eta))
        t = fam.sample(rng, mu, truth.shape, n)
        t[never] = np.inf
        horizon = 24.0
        base = dict(
            arm_id=aid, parent_arm_id=pd.NA, study_id=sid, population=pop, strategy=strat, serm_agent=pd.NA,
            androgen_preparation="short_ester_injection",
            androgen_duration_months=np.nan, age_years=np.nan, baseline_sperm_status="azoospermic",
            n_azoospermic=n, time_zero="last_androgen_dose", arm_n=n, threshold=threshold, time_stat="fixed",
            events_derived=False, proportion=np.nan, value=np.nan, value_unit=pd.NA, statistic=pd.NA, over=pd.NA,
            dispersion_type=pd.NA, dispersion_value=np.nan, lower=np.nan, upper=np.nan, confidence="primary",
            source_ref="pmid:00000", source_location="simulated",
        )
        recovered = t[np.isfinite(t) & (t <= horizon)]

        def add(k, **kw):
            rows.append({**base, "outcome_id": f"{aid}_{k}", **kw})

        if fmt == "count":
            tt = float(rng.choice([3.0, 6.0, 12.0]))
            add(1, outcome="recovered_count", time_months=tt, n=n, events=int((t <= tt).sum()))
        elif fmt == "cumulative":
            for k, tt in enumerate((3.0, 6.0, 12.0), 1):
                add(k, outcome="cumulative_proportion", time_months=tt, n=n, events=int((t <= tt).sum()),
                    proportion=(t <= tt).mean(), value=(t <= tt).mean(), value_unit="proportion", statistic="proportion",
                    printed_decimals=4)
        elif fmt == "km_median":
            if (np.isfinite(t) & (t <= horizon)).mean() > 0.5:
                add(1, outcome="time_to_recovery", time_months=np.nan, n=n, events=pd.NA, value=float(np.quantile(t, 0.5)),
                    value_unit="months", statistic="median", over="all")
            else:
                add(1, outcome="median_not_reached", time_months=horizon, n=n, events=pd.NA)
        elif fmt == "recoverer_median":
            add(1, outcome="recovered_count", time_months=horizon, n=n, events=len(recovered))
            add(2, outcome="time_to_recovery", time_months=np.nan, n=len(recovered), events=pd.NA,
                value=float(np.median(recovered)), value_unit="months", statistic="median", over="recoverers")
        elif fmt == "recoverer_mean":
            add(1, outcome="recovered_count", time_months=horizon, n=n, events=len(recovered))
            add(2, outcome="time_to_recovery", time_months=horizon, n=len(recovered), events=pd.NA,
                value=float(np.mean(recovered)), value_unit="months", statistic="mean", over="recoverers",
                dispersion_type="sd", dispersion_value=float(np.std(recovered, ddof=1)))
        elif fmt == "not_reached":
            tt = 2.0
            if (t <= tt).mean() < 0.5:
                add(1, outcome="median_not_reached", time_months=tt, n=n, events=pd.NA)
            else:
                add(1, outcome="recovered_count", time_months=tt, n=n, events=int((t <= tt).sum()))
        elif fmt == "count_no_time":
            tt = float(np.exp(rng.uniform(*np.log(UNKNOWN_FOLLOWUP))))
            add(1, outcome="recovered_count", time_months=np.nan, time_stat="unspecified", n=n,
                events=int((t <= tt).sum()))
        elif fmt == "percent_no_n":
            tt = float(rng.choice([6.0, 12.0]))
            pct = float(np.round(100 * (t <= tt).mean()))
            add(1, outcome="cumulative_proportion", time_months=tt, n=pd.NA, events=pd.NA, proportion=pct / 100,
                value=pct / 100, value_unit="proportion", statistic="proportion", printed_decimals=0)
        elif fmt == "median_no_n":
            if (np.isfinite(t) & (t <= horizon)).mean() > 0.5:
                add(1, outcome="time_to_recovery", time_months=np.nan, n=pd.NA, events=pd.NA,
                    value=float(np.quantile(t, 0.5)), value_unit="months", statistic="median", over="all",
                    arm_n=pd.NA, n_azoospermic=pd.NA)
            else:
                add(1, outcome="median_not_reached", time_months=horizon, n=n, events=pd.NA)
        elif fmt == "mean_all_min_followup":
            tau = float(np.exp(rng.uniform(np.log(MIN_FOLLOWUP), np.log(UNKNOWN_FOLLOWUP[1]))))
            x = np.minimum(t, tau)
            m, half = float(np.mean(x)), float(Z95 * np.std(x, ddof=1) / np.sqrt(n))
            add(1, outcome="time_to_recovery", time_months=MIN_FOLLOWUP, time_stat="min_followup", n=n, events=pd.NA,
                value=m, value_unit="months", statistic="mean", over="all", dispersion_type="ci95",
                lower=m - half, upper=m + half)
        elif fmt == "individual":
            obs = np.minimum(t, horizon)
            for k, (ti, ev) in enumerate(zip(obs, t <= horizon, strict=True), 1):
                add(k, outcome="individual", time_months=float(ti), n=1, events=int(ev))
    df = pd.DataFrame(rows)
    for c in HARMONISED_COLUMNS:
        if c not in df:
            df[c] = pd.NA
    for col in ("n", "events", "arm_n", "n_azoospermic"):
        df[col] = pd.array(pd.to_numeric(df[col], errors="coerce"), dtype="Int64")
    return df[HARMONISED_COLUMNS], truth
