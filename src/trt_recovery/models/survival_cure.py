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
* thresholds: on the ladder any < 1 < 1.5 < 3 < 5 < 10 < 15 < 20 < own baseline, both
  :math:`\theta` and :math:`\eta` are cumulative sums of half-normal steps (a stricter threshold
  is never reached sooner, nor more often): a half-normal total shift from "any" to "baseline"
  is split into steps by Dirichlet weights; other definitions (total motile count, "improvement",
  normal range, unspecified...) each get a free effect. Thresholds are never converted into one
  another in the data; the ladder is the model's only ordering assumption;
* covariates: :math:`x^{dur} = \log(\text{duration months}/12)` (zero for ``hh`` arms),
  :math:`x^{age} = (\text{age} - 35)/10`, :math:`x^{azoo}` = fraction azoospermic at time zero.
  A missing covariate is a latent arm-level value drawn from its population distribution (whose
  mean and spread are learnt from the arms that report it), so arms are never dropped for it.
  A covariate reported by fewer than two arms of the fit (or with a single value) is left out (its coefficient would not be
  identified), and predictions say that its effect could not be estimated. These are arm means,
  not individuals: the coefficients are ecological associations;
* study effects :math:`z_s, w_s \sim N(0, 1)` are non-centred and shared by a study's arms.

Each reporting format adds its own observed variable (see :mod:`trt_recovery.survival.likelihood`):
``interval_count`` (r of n by t, cumulative counts at several times as successive intervals),
``quantile_time`` (medians and IQR quartiles, over all men or over recoverers), ``mean_time``
(means among recoverers), ``not_reached`` (median not reached by t) and ``individual_time``
(individual or KM-reconstructed times). Rows no term can use are reported with their reason.

Priors (one place: ``DEFAULT_PRIORS``): median time scale :math:`e^{\alpha}` centred on 6 months
with log-sd 1 (so reference recovery times span weeks to a few years), shape log-normal around the
family default, non-recovery :math:`\text{logit}^{-1}(\gamma)` centred on 10%, effects normal
with the listed standard deviations, threshold steps half-normal, study SDs half-normal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from trt_recovery.models import register
from trt_recovery.models.base import ModelData, ModelSpec, exclusion_frame, resolve_overlaps, select_rows
from trt_recovery.schema import load_schema
from trt_recovery.survival import likelihood as lik
from trt_recovery.survival.families import get_family
from trt_recovery.survival.km import reconstruct_ipd

#: Ordered thresholds (lenient to strict). Anything else gets a free effect.
THRESHOLD_LADDER = ("any", "1", "1.5", "3", "5", "10", "15", "20", "baseline")
REFERENCE_STRATEGY = "none"
REFERENCE_POPULATION = "trt"
REFERENCE_PREPARATION = "short_ester_injection"
NO_ANDROGEN = "none_hh"
UNKNOWN_PREPARATION = "unknown"
HORIZON_NONE = 1.0e4  # months: "no truncation" for means/medians among recoverers
AGE_CENTRE, AGE_SCALE = 35.0, 10.0

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
    "threshold_free_sd": 1.0,
    "preparation_sd": 0.5,
    "covariate_time_sd": 0.3,
    "covariate_cure_sd": 0.5,
    "study_time_sd_scale": 0.5,
    "study_cure_sd_scale": 0.5,
}
COUNT_KINDS = ("recovered_count", "cumulative_proportion", "km_point")
TERM_NAMES = ("interval_count", "quantile_time", "mean_time", "not_reached", "individual_time")


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
    # 3a. individual times (given), and Kaplan-Meier curves with >= 3 points -> Guyot reconstruction
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
    # 1. counts (cumulative counts at several times for the same arm, threshold and n -> intervals)
    counts = df[df.outcome.isin(COUNT_KINDS) & ~df.outcome_id.isin(km_used)]
    for r in counts[counts.time_months.isna() | counts.n.isna() | counts.events.isna()].itertuples():
        _excl(excluded, r, "count without a follow-up time" if pd.isna(r.time_months) else "count without n")
    ok = counts.dropna(subset=["time_months", "n", "events"])
    for (_, _), g in ok.groupby(["arm_id", "threshold"], sort=True):
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
    # 2-3. times to recovery
    times = df[df.outcome == "time_to_recovery"]
    for r in times.itertuples():
        if r.value_unit != "months" or pd.isna(r.value):
            _excl(excluded, r, "time to recovery without a usable value")
            continue
        over_all = r.over == "all"
        if r.statistic == "mean":
            if over_all:
                _excl(excluded, r, "a mean over all men is undefined when some never recover; no term")
                continue
            m = _recoverers(df, r)
            if not m > 0:
                _excl(excluded, r, "mean among recoverers without the number of recoverers")
                continue
            sd = np.nan
            if r.dispersion_type == "sd":
                sd = r.dispersion_value
            elif r.dispersion_type == "se":
                sd = r.dispersion_value * np.sqrt(m)
            terms["mean_time"].append(
                dict(outcome_id=r.outcome_id, arm_id=r.arm_id, threshold=r.threshold, value=r.value, size=m,
                     sd=sd, tau=r.time_months if not pd.isna(r.time_months) else HORIZON_NONE)
            )
        elif r.statistic == "median":
            size = _arm_size(r) if over_all else _recoverers(df, r)
            if not size > 0:
                _excl(excluded, r, "median without the number of men behind it")
                continue
            quantiles = [(0.5, r.value)]
            if r.dispersion_type == "iqr" and not pd.isna(r.lower) and not pd.isna(r.upper):
                quantiles += [(0.25, r.lower), (0.75, r.upper)]
            for p, q in quantiles:
                terms["quantile_time"].append(
                    dict(outcome_id=r.outcome_id, arm_id=r.arm_id, threshold=r.threshold, value=q, p=p,
                         size=size, over_all=int(over_all), tau=HORIZON_NONE)
                )
        else:
            _excl(excluded, r, f"time statistic {r.statistic!r} has no term")
    # 5. median not reached
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
        _excl(excluded, r, f"outcome '{r.outcome}' is not a time-to-recovery format")
    frames = {k: pd.DataFrame(v) for k, v in terms.items()}
    return frames, excluded


def _arm_table(arms_used: pd.DataFrame) -> pd.DataFrame:
    a = arms_used.drop_duplicates("arm_id").set_index("arm_id")
    out = pd.DataFrame(index=a.index)
    out["study_id"] = a["study_id"]
    out["strategy"] = a["strategy"]
    out["population"] = a["population"]
    prep = a["androgen_preparation"].astype(object)
    prep = prep.where(prep.notna(), UNKNOWN_PREPARATION)
    prep = prep.where(a["population"] != "hh", NO_ANDROGEN)
    out["preparation"] = prep
    dur = np.log(a["androgen_duration_months"].astype(float) / 12.0)
    out["log_duration"] = dur.where(a["population"] != "hh")
    out["no_androgen"] = (a["population"] == "hh").astype(int)
    out["age_std"] = (a["age_years"].astype(float) - AGE_CENTRE) / AGE_SCALE
    status = a["baseline_sperm_status"].astype(object)
    azoo = pd.Series(np.nan, index=a.index)
    azoo[status == "azoospermic"] = 1.0
    azoo[status.isin(["severe_oligozoospermic", "normal"])] = 0.0
    return out.assign(azoo_fraction=azoo)


def prepare(harmonised: pd.DataFrame, selection) -> ModelData:
    df, excluded = select_rows(harmonised, selection)
    df, overlap = resolve_overlaps(df)
    excluded += overlap
    terms, term_excl = build_terms(df)
    excluded += term_excl
    used_ids = sorted({oid for t in terms.values() if len(t) for oid in t["outcome_id"]})
    used = df[df.outcome_id.isin(used_ids)].reset_index(drop=True)
    arms = _arm_table(used) if len(used) else pd.DataFrame()
    # mixed-status arms: fraction azoospermic from counts when given
    if len(used):
        mixed = used.drop_duplicates("arm_id").set_index("arm_id")
        frac = harmonised_fraction(mixed)
        arms.loc[frac.index, "azoo_fraction"] = arms.loc[frac.index, "azoo_fraction"].fillna(frac)
    schema = load_schema()
    ladder = list(THRESHOLD_LADDER)
    free = sorted({t for t in used["threshold"].dropna() if t not in THRESHOLD_LADDER})
    coords = {
        "arm": arms.index.tolist(),
        "study": sorted(arms["study_id"].unique().tolist()) if len(arms) else [],
        "strategy": [s for s in schema.terms("strategy") if s != REFERENCE_STRATEGY],
        "population": [p for p in schema.terms("population") if p != REFERENCE_POPULATION],
        "preparation": [p for p in schema.terms("androgen_preparation") if p != REFERENCE_PREPARATION]
        + [UNKNOWN_PREPARATION, NO_ANDROGEN],
        "threshold_step": ladder[1:],
        "threshold_free": free,
    }
    for name, t in terms.items():
        coords[f"{name}_obs"] = t["outcome_id"].astype(str).add("#").add(t.index.astype(str)).tolist() if len(t) else []
    return ModelData(used=used, exclusions=exclusion_frame(excluded), coords=coords, arms=arms, terms=terms)


def harmonised_fraction(arms: pd.DataFrame) -> pd.Series:
    """Fraction azoospermic from the arm's counts (n_azoospermic / n), where the table has them."""
    if "n_azoospermic" not in arms or "arm_n" not in arms:
        return pd.Series(dtype=float)
    f = pd.to_numeric(arms["n_azoospermic"], errors="coerce") / pd.to_numeric(arms["arm_n"], errors="coerce")
    return f.dropna()


# ------------------------------------------------------------------------------------------
# Model


def _latent_covariate(name: str, values: pd.Series, mask_applicable: np.ndarray, mean_sd: float, scale_sd: float, dims: str):
    """Arm covariate with missing entries imputed from a learnt population distribution."""
    obs = values.to_numpy(dtype=float)
    missing = np.isnan(obs) & mask_applicable
    observed = ~np.isnan(obs) & mask_applicable
    centre = pm.Normal(f"{name}_pop_mean", 0.0, mean_sd)
    spread = pm.HalfNormal(f"{name}_pop_sd", scale_sd)
    if observed.any():
        pm.Normal(f"{name}_reported", centre, spread, observed=obs[observed])
    full = pt.as_tensor(np.where(observed, obs, 0.0))
    if missing.any():  # non-centred: the imputed values do not form a funnel with the spread
        z = pm.Normal(f"{name}_imputed_z", 0.0, 1.0, shape=int(missing.sum()))
        full = pt.set_subtensor(full[np.flatnonzero(missing)], centre + spread * z)
    return pm.Deterministic(name, full, dims=dims)


MIN_REPORTING = 2


def covariate_reported(values: pd.Series, applicable: np.ndarray) -> bool:
    """True when at least MIN_REPORTING applicable arms report the covariate, with different values."""
    reported = values[values.notna().to_numpy() & applicable]
    return len(reported) >= MIN_REPORTING and reported.nunique() > 1


def _index(values, levels: list[str], reference: str) -> tuple[np.ndarray, np.ndarray]:
    """Index into an effect vector whose reference level is 0 (returned mask says 'not reference')."""
    idx = np.array([levels.index(v) if v in levels else 0 for v in values], dtype=int)
    mask = np.array([v != reference for v in values], dtype=float)
    return idx, mask


def _effect(vec, idx, mask):
    return vec[idx] * mask


def threshold_effects(thresholds, coords, theta_steps, theta_free):
    """theta for each observation: cumulative ladder steps, or a free effect."""
    ladder = ["any"] + list(coords["threshold_step"])
    cum = pt.concatenate([pt.zeros(1), pt.cumsum(theta_steps)])
    free = list(coords["threshold_free"])
    lad_idx = np.array([ladder.index(t) if t in ladder else 0 for t in thresholds], dtype=int)
    is_free = np.array([t in free for t in thresholds], dtype=float)
    free_idx = np.array([free.index(t) if t in free else 0 for t in thresholds], dtype=int)
    free_part = theta_free[free_idx] * is_free if (len(free) and theta_free is not None) else pt.zeros(len(thresholds))
    return cum[lad_idx] * (1 - is_free) + free_part


def make_build(family_name: str):
    fam = get_family(family_name)

    def build(data: ModelData, priors: dict[str, float]) -> pm.Model:
        """Build the mixture-cure AFT model (equations in the module docstring)."""
        arms, coords = data.arms, data.coords
        if arms is None or len(arms) == 0:
            raise ValueError("survival model: no usable observation")
        studies = coords["study"]
        study_idx = np.array([studies.index(s) for s in arms["study_id"]])
        strat_idx, strat_mask = _index(arms["strategy"], coords["strategy"], REFERENCE_STRATEGY)
        pop_idx, pop_mask = _index(arms["population"], coords["population"], REFERENCE_POPULATION)
        prep_idx, prep_mask = _index(arms["preparation"], coords["preparation"], REFERENCE_PREPARATION)
        androgen = 1.0 - arms["no_androgen"].to_numpy(float)
        with pm.Model(coords={k: v for k, v in coords.items()}) as model:
            alpha = pm.Normal("time_intercept", np.log(priors["time_median_months"]), priors["time_log_sd"])
            shape = pm.LogNormal(f"{fam.name}_{fam.shape_name}", np.log(fam.shape_prior[0]), priors["shape_log_sd"])
            p0 = priors["cure_prior_prob"]
            gamma = pm.Normal("cure_intercept", np.log(p0 / (1 - p0)), priors["cure_logit_sd"])
            b_strat = pm.Normal("strategy_time", 0.0, priors["strategy_time_sd"], dims="strategy")
            d_strat = pm.Normal("strategy_cure", 0.0, priors["strategy_cure_sd"], dims="strategy")
            b_pop = pm.Normal("population_time", 0.0, priors["population_time_sd"], dims="population")
            d_pop = pm.Normal("population_cure", 0.0, priors["population_cure_sd"], dims="population")
            b_prep = pm.Normal("preparation_time", 0.0, priors["preparation_sd"], dims="preparation")
            # monotone ladder: a half-normal total shift from 'any' to the strictest level, split over
            # the steps by Dirichlet weights (so unused intermediate levels do not inflate the prior)
            n_steps = len(coords["threshold_step"])
            th_total = pm.HalfNormal("threshold_time_total", priors["threshold_step_time_scale"])
            et_total = pm.HalfNormal("threshold_cure_total", priors["threshold_step_cure_scale"])
            th_w = pm.Dirichlet("threshold_time_weights", np.ones(n_steps), dims="threshold_step")
            et_w = pm.Dirichlet("threshold_cure_weights", np.ones(n_steps), dims="threshold_step")
            th_steps = pm.Deterministic("threshold_time_step", th_total * th_w, dims="threshold_step")
            et_steps = pm.Deterministic("threshold_cure_step", et_total * et_w, dims="threshold_step")
            th_free = et_free = None  # no zero-size variables (they break convergence summaries)
            if coords["threshold_free"]:
                th_free = pm.Normal("threshold_time_free", 0.0, priors["threshold_free_sd"], dims="threshold_free")
                et_free = pm.Normal("threshold_cure_free", 0.0, priors["threshold_free_sd"], dims="threshold_free")
            # a covariate enters only when at least MIN_REPORTING arms report it: with fewer, its
            # coefficient is not identified and would only add prior noise (outputs then say so)
            cov, cc = priors["covariate_time_sd"], priors["covariate_cure_sd"]
            zero = pt.zeros(len(arms))
            x = {"duration": zero, "age": zero, "azoospermia": zero}
            b = {k: 0.0 for k in x}
            c = {k: 0.0 for k in x}
            if covariate_reported(arms["log_duration"], androgen > 0):
                x["duration"] = _latent_covariate("log_duration", arms["log_duration"], androgen > 0, 1.0, 1.0, "arm") * androgen
            if covariate_reported(arms["age_std"], np.ones(len(arms), bool)):
                x["age"] = _latent_covariate("age_std", arms["age_std"], np.ones(len(arms), bool), 1.0, 1.0, "arm")
            if covariate_reported(arms["azoo_fraction"], np.ones(len(arms), bool)):
                azoo_obs = arms["azoo_fraction"].to_numpy(float)
                miss = np.isnan(azoo_obs)
                azoo = pt.as_tensor(np.nan_to_num(azoo_obs))
                if miss.any():
                    azoo_lat = pm.Beta("azoospermia_imputed", 1.0, 1.0, shape=int(miss.sum()))
                    azoo = pt.set_subtensor(azoo[np.flatnonzero(miss)], azoo_lat)
                x["azoospermia"] = pm.Deterministic("azoospermia_fraction", azoo, dims="arm")
            for k in x:
                if x[k] is not zero:
                    b[k] = pm.Normal(f"{k}_time", 0.0, cov)
                    c[k] = pm.Normal(f"{k}_cure", 0.0, cc)
            sig_s = pm.HalfNormal("study_time_sd", priors["study_time_sd_scale"])
            tau_s = pm.HalfNormal("study_cure_sd", priors["study_cure_sd_scale"])
            z_s = pm.Normal("study_time_z", 0.0, 1.0, dims="study")
            w_s = pm.Normal("study_cure_z", 0.0, 1.0, dims="study")
            arm_mu = (
                alpha
                + _effect(b_strat, strat_idx, strat_mask)
                + _effect(b_pop, pop_idx, pop_mask)
                + _effect(b_prep, prep_idx, prep_mask)
                + b["duration"] * x["duration"]
                + b["age"] * x["age"]
                + b["azoospermia"] * x["azoospermia"]
                + sig_s * z_s[study_idx]
            )
            arm_eta = (
                gamma
                + _effect(d_strat, strat_idx, strat_mask)
                + _effect(d_pop, pop_idx, pop_mask)
                + c["duration"] * x["duration"]
                + c["age"] * x["age"]
                + c["azoospermia"] * x["azoospermia"]
                + tau_s * w_s[study_idx]
            )
            pm.Deterministic("arm_time_logscale", arm_mu, dims="arm")
            pm.Deterministic("arm_cure_logit", arm_eta, dims="arm")
            arm_list = list(arms.index)

            def per_obs(t: pd.DataFrame):
                a = np.array([arm_list.index(x) for x in t["arm_id"]])
                thr = t["threshold"].tolist()
                mu = arm_mu[a] + threshold_effects(thr, coords, th_steps, th_free)
                eta = arm_eta[a] + threshold_effects(thr, coords, et_steps, et_free)
                return mu, -pt.softplus(-eta), -pt.softplus(eta)  # mu, log pi, log(1-pi)

            t = data.terms.get("interval_count")
            if t is not None and len(t):
                mu, lpi, l1mpi = per_obs(t)
                pm.CustomDist(
                    "interval_count", t["at_risk"].to_numpy(float), t["t0"].to_numpy(float),
                    t["t1"].to_numpy(float), mu, shape, lpi, l1mpi,
                    logp=lambda v, n, t0, t1, m, k, lp, l1p: lik.interval_count_logp(v, n, t0, t1, m, k, lp, l1p, fam),
                    observed=t["events"].to_numpy(float), dims="interval_count_obs",
                )
            t = data.terms.get("quantile_time")
            if t is not None and len(t):
                mu, lpi, l1mpi = per_obs(t)
                pm.CustomDist(
                    "quantile_time", t["p"].to_numpy(float), t["size"].to_numpy(float),
                    t["over_all"].to_numpy(float), t["tau"].to_numpy(float), mu, shape, lpi, l1mpi,
                    logp=lambda v, p, n, oa, tau, m, k, lp, l1p: lik.quantile_logp(v, p, n, oa, tau, m, k, lp, l1p, fam),
                    observed=t["value"].to_numpy(float), dims="quantile_time_obs",
                )
            t = data.terms.get("mean_time")
            if t is not None and len(t):
                mu, _, _ = per_obs(t)
                m1, sd_model = lik.recoverer_moments(pt.as_tensor(t["tau"].to_numpy(float)), mu, shape, fam)
                sd_rep = t["sd"].to_numpy(float)
                sd = pt.switch(pt.as_tensor(np.isnan(sd_rep)), sd_model, pt.as_tensor(np.nan_to_num(sd_rep)))
                pm.Normal("mean_time", m1, sd / np.sqrt(t["size"].to_numpy(float)),
                          observed=t["value"].to_numpy(float), dims="mean_time_obs")
            t = data.terms.get("not_reached")
            if t is not None and len(t):
                mu, lpi, l1mpi = per_obs(t)
                pm.CustomDist(
                    "not_reached", t["size"].to_numpy(float), mu, shape, lpi, l1mpi,
                    logp=lambda v, n, m, k, lp, l1p: lik.not_reached_logp(v, n, m, k, lp, l1p, fam),
                    observed=t["t"].to_numpy(float), dims="not_reached_obs",
                )
            t = data.terms.get("individual_time")
            if t is not None and len(t):
                mu, lpi, l1mpi = per_obs(t)
                pm.CustomDist(
                    "individual_time", t["event"].to_numpy(float), mu, shape, lpi, l1mpi,
                    logp=lambda v, e, m, k, lp, l1p: lik.individual_logp(v, e, m, k, lp, l1p, fam),
                    observed=t["time"].to_numpy(float), dims="individual_time_obs",
                )
        return model

    return build


SUMMARY_VARS = (
    "time_intercept",
    "cure_intercept",
    "strategy_time",
    "strategy_cure",
    "population_time",
    "population_cure",
    "threshold_time_total",
    "threshold_cure_total",
    "study_time_sd",
    "study_cure_sd",
)

for _fam in ("weibull", "lognormal", "loglogistic"):
    register(
        ModelSpec(
            name=f"survival_cure_{_fam}",
            description=f"Hierarchical mixture-cure AFT model ({_fam}) of time to recovery, all reporting formats",
            default_priors=dict(DEFAULT_PRIORS),
            prepare=prepare,
            build=make_build(_fam),
            summary_vars=SUMMARY_VARS + (f"{_fam}_{get_family(_fam).shape_name}",),
        )
    )
