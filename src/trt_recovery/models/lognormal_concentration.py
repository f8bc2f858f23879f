r"""Hierarchical log-normal meta-analysis of the sperm concentration reached.

Model
-----
In arm :math:`j` (study :math:`s(j)`, strategy :math:`k(j)`, population :math:`p(j)`) the
concentration :math:`C` of a man (million/mL) is log-normal:
:math:`\log C \sim N(\mu_j, \sigma_j^2)`, so the arm's median (geometric mean) is
:math:`e^{\mu_j}` and its mean is :math:`e^{\mu_j + \sigma_j^2/2}`.

.. math::

    \mu_j &= \alpha_{k(j)} + \delta_{p(j)} + \tau\, z_{s(j)}, \qquad
        \delta_{\text{ref}} = 0,\ z_s \sim N(0, 1) \\
    \log \sigma_j &= \lambda + \omega\, w_j, \qquad w_j \sim N(0, 1)
        \quad (\text{or } \sigma_j = e^\lambda \text{ for all arms when } o = 0) \\
    \alpha_k &\sim N(a_0, a_1), \quad \delta_p \sim N(0, d), \quad \tau \sim \text{HalfNormal}(t), \\
    \lambda &\sim N(l_0, l_1), \quad \omega \sim \text{HalfNormal}(o)

The reference population is ``trt`` when present (else the first in alphabetical order), so
:math:`\alpha_k` is the log median concentration with strategy :math:`k` in an average TRT study.
Study effects are non-centred; the within-arm log-SD :math:`\sigma_j` is partially pooled, so an
arm that reports only a mean or only a median borrows the spread of the arms that report one.

Likelihood (one term per arm; :math:`n_j` men)
-----------------------------------------------
Every reported summary enters through its sampling distribution under the log-normal model; no
median is ever treated as a mean. With :math:`E = e^{\mu+\sigma^2/2}`, :math:`V = E^2(e^{\sigma^2}-1)`,
third and fourth central moments :math:`\mu_3 = V^{3/2}(e^{\sigma^2}+2)\sqrt{e^{\sigma^2}-1}` and
:math:`\mu_4 = V^2(e^{4\sigma^2} + 2e^{3\sigma^2} + 3e^{2\sigma^2} - 3)`:

1. **Mean** :math:`\bar x` (``conc_mean``): :math:`\bar x \sim N(E, V/n)` (central limit theorem).
   With a reported SD :math:`S` (or SE :math:`\times\sqrt n`, or a 95% CI of the mean turned into
   an SE), :math:`(\bar x, \log S)` is taken as bivariate normal with
   :math:`\operatorname{Var}\log S \approx \kappa/(4n)`, :math:`E\log S \approx \tfrac12\log V -
   \kappa/(4n)`, :math:`\kappa = (\mu_4 - V^2)/V^2`, and :math:`\operatorname{Cov}(\bar x, \log S)
   \approx \mu_3/(2Vn)` (delta method on the sample variance; the log scale makes the normal
   approximation usable for skewed data); the term is :math:`p(\bar x)\,p(S \mid \bar x)`.
   Measured on simulated arms of 15-60 men: unbiased for :math:`\sigma = 0.6` (posterior median
   0.595), but for strongly skewed arms (:math:`\sigma = 0.9`, kurtosis about 60) small-sample
   SDs fall short of the asymptotics and :math:`\sigma` comes out low (0.79). The moment
   relations are those of the log-normal method of Higgins, White & Anzures-Cabrera (2008).
2. **Median** :math:`\hat m`, optionally with quartiles :math:`(\hat q_1, \hat q_3)` and/or range
   :math:`(\min, \max)` (``conc_median``). A log transform maps sample quantiles to sample
   quantiles, so :math:`\log \hat q_p` are sample quantiles of :math:`N(\mu, \sigma^2)` data and are
   asymptotically jointly normal with means :math:`\mu + \sigma z_p` and covariances
   :math:`\sigma^2 p(1-r) / \{n\,\phi(z_p)\phi(z_r)\}` for :math:`p \le r` (Serfling 1980, sec. 2.3).
   A median alone gives :math:`\log \hat m \sim N(\mu, \tfrac{\pi}{2}\sigma^2/n)`; with an IQR the
   three log-quantiles are trivariate normal. A range adds the exact joint density of the sample
   minimum and maximum of :math:`n` normal log-values,
   :math:`n(n-1)\phi(a)\phi(b)\{\Phi(b)-\Phi(a)\}^{n-2}/\sigma^2` with :math:`a, b` the standardised
   log extremes, treated as independent of the quantile part (an approximation). The quartile
   part assumes nearly unbiased sample quartiles; quartiles interpolated the way R's default
   (type 7) does are pulled toward the median in small samples, and then :math:`\sigma` comes out
   low (measured: 0.555 for a true 0.6 with 72 arms of 15-60 men). This is a
   likelihood version of the quantile-estimation approach of McGrath et al. (2020) with the
   log-normal family fixed in advance.

Which rows enter: ``concentration`` outcomes in million/mL with a mean or median and a number of
men (the row's ``n``, else the arm's: an upper bound when the summary covers only the men who
recovered, e.g. a mean "first concentration" at recovery). One row per arm: the latest reported time (a row without a
time counts as the end of follow-up). Total sperm counts (million per ejaculate), values of 0
(log-normal cannot hold them), earlier times and other outcome kinds are excluded with a reason.
The time since stopping is not modelled: the pooled values describe concentration at the end of
each study's follow-up (or during co-treatment for ``*_during_trt`` strategies).

Reported quantities: ``median_concentration[strategy, population] = exp(alpha + delta)`` (average
study), ``mean_concentration`` (the same with :math:`e^{\bar\sigma^2/2}`,
:math:`\bar\sigma = e^\lambda`), and ``predicted_median`` for a new study (adds :math:`\tau z_{new}`,
a prediction variable drawn after sampling with a seed, not sampled by NUTS).

References: Higgins JPT, White IR, Anzures-Cabrera J. Stat Med 2008;27:6072-92
(doi:10.1002/sim.3427). McGrath S, Zhao X, Steele R, et al. Stat Methods Med Res 2020;29:2520-37
(doi:10.1177/0962280219889080). Serfling RJ. Approximation Theorems of Mathematical Statistics.
Wiley, 1980.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
from scipy import stats

from trt_recovery.harmonise import mean_standard_error
from trt_recovery.models import register
from trt_recovery.models.base import (
    ModelData,
    ModelSpec,
    arm_coords,
    exclusion_frame,
    lazy,
    new_study,
    observed_term,
    one_row_per_arm,
    population_shift,
    pymc_coords,
    resolve_overlaps,
    select_rows,
)
from trt_recovery.survival.likelihood import _lib

NAME = "lognormal_concentration"
DEFAULT_PRIORS = {
    "strategy_loc": math.log(15.0),  # prior median 15 million/mL
    "strategy_sd": 1.5,  # 95% prior range about 0.8 to 280 million/mL
    "population_sd": 1.0,
    "study_sd_scale": 0.5,
    "log_sigma_loc": 0.0,  # within-arm log-SD about 1: an arm's 2.5% and 97.5% men differ about 50-fold
    "log_sigma_sd": 0.5,
    "log_sigma_between_scale": 0.3,
}
PRIOR_NOTES = {
    "strategy_loc": "prior centre of each strategy's log median concentration (log million/mL)",
    "strategy_sd": "prior SD of each strategy's log median concentration",
    "population_sd": "SD of each population's shift of the log median (vs TRT)",
    "study_sd_scale": "half-normal scale of the between-study SD of the log median",
    "log_sigma_loc": "prior centre of the log of the within-arm log-SD",
    "log_sigma_sd": "prior SD of the log of the within-arm log-SD",
    "log_sigma_between_scale": "half-normal scale of the between-arm spread of the log within-arm SD (0: one shared SD)",
}
PREDICTION_VARS = ("predicted_median",)
CONCENTRATION_UNIT = "million/mL"
_P = np.array([0.25, 0.5, 0.75])
_Z = stats.norm.ppf(_P)
_PHI = stats.norm.pdf(_Z)
#: Asymptotic covariance of (q_.25, q_.5, q_.75) of N(0, 1) samples, times n.
QUANTILE_COV = np.array(
    [[min(p, r) * (1 - max(p, r)) / (_PHI[i] * _PHI[j]) for j, r in enumerate(_P)] for i, p in enumerate(_P)]
)
_QUANTILE_PREC = np.linalg.inv(QUANTILE_COV)
_QUANTILE_LOGDET = float(np.linalg.slogdet(QUANTILE_COV)[1])
LOG_2PI = math.log(2 * math.pi)


def lognormal_moments(mu, sigma):
    """Mean, variance, third and fourth central moments of a log-normal(mu, sigma)."""
    lib = _lib(mu, sigma)
    s2 = sigma**2
    w = lib.exp(s2)
    mean = lib.exp(mu + s2 / 2)
    var = mean**2 * (w - 1)
    m3 = var**1.5 * (w + 2) * lib.sqrt(w - 1)
    m4 = var**2 * (w**4 + 2 * w**3 + 3 * w**2 - 3)
    return mean, var, m3, m4


def _normal_logpdf(x, loc, scale, lib):
    return -0.5 * LOG_2PI - lib.log(scale) - 0.5 * ((x - loc) / scale) ** 2


def mean_logp(xbar, sd, has_sd, n, mu, sigma):
    r"""Log-density of a reported sample mean (and SD when ``has_sd`` is 1) of n log-normal values.

    The mean is normal (CLT). The SD enters on the log scale, where its sampling distribution is
    much closer to normal for skewed data: :math:`\log S \mid \bar x` is normal with the moments
    of the bivariate delta-method approximation of :math:`(\bar x, \log S)`, including the
    second-order term :math:`-\operatorname{Var}(S^2)/(4V^2)` of :math:`E \log S`. The returned
    density is for :math:`(\bar x, S)` (Jacobian :math:`1/S` included). ``sd`` is ignored (may hold
    any positive value) where ``has_sd`` is 0.
    """
    lib = _lib(xbar, mu, sigma)
    mean, var, m3, m4 = lognormal_moments(mu, sigma)
    v_mean = var / n
    lp_mean = _normal_logpdf(xbar, mean, lib.sqrt(v_mean), lib)
    kappa = (m4 - var**2) / var**2  # Var(S^2) * n / V^2
    v_log_sd = kappa / (4 * n)
    e_log_sd = 0.5 * lib.log(var) - kappa / (4 * n)
    cov = m3 / (2 * var * n)
    cond_loc = e_log_sd + cov / v_mean * (xbar - mean)
    cond_var = lib.maximum(v_log_sd - cov**2 / v_mean, 1e-9 * v_log_sd)
    log_sd = lib.log(sd)
    lp_sd = _normal_logpdf(log_sd, cond_loc, lib.sqrt(cond_var), lib) - log_sd
    where = np.where if lib is np else pt.switch
    return lp_mean + where(has_sd > 0, lp_sd, 0.0)


def median_logp(log_median, log_q1, log_q3, log_min, log_max, has_iqr, has_range, n, mu, sigma):
    """Log-density of a reported median, with quartiles and/or range when flagged (log scale).

    Values on the log scale of concentration; unused quartile/range cells may hold any finite
    value. Constants of the change of variables from the raw scale are left out (they do not
    depend on the parameters).
    """
    lib = _lib(log_median, mu, sigma)
    where = np.where if lib is np else pt.switch
    v = sigma**2 / n
    # median alone
    lp_med = _normal_logpdf(log_median, mu, lib.sqrt(v * QUANTILE_COV[1, 1]), lib)
    # (q1, median, q3) trivariate normal
    r = [log_q1 - mu - sigma * _Z[0], log_median - mu, log_q3 - mu - sigma * _Z[2]]
    quad = sum(_QUANTILE_PREC[i, j] * r[i] * r[j] for i in range(3) for j in range(3))
    lp_iqr = -1.5 * LOG_2PI - 0.5 * _QUANTILE_LOGDET - 1.5 * lib.log(v) - 0.5 * quad / v
    # exact joint density of the sample extremes of n normal values
    a = (log_min - mu) / sigma
    b = (log_max - mu) / sigma
    cdf_gap = lib.maximum(_ndtr(b, lib) - _ndtr(a, lib), 1e-300)
    lp_range = (
        lib.log(n * (n - 1)) - LOG_2PI - 0.5 * (a**2 + b**2) - 2 * lib.log(sigma) + (n - 2) * lib.log(cdf_gap)
    )
    return where(has_iqr > 0, lp_iqr, lp_med) + where(has_range > 0, lp_range, 0.0)


def _ndtr(x, lib):
    if lib is np:
        return stats.norm.cdf(x)
    return 0.5 * (1 + pt.erf(x / math.sqrt(2)))


# ---------------------------------------------------------------------------------------------
# data preparation


def _reason(r: pd.Series) -> str | None:
    if r["outcome"] != "concentration":
        return f"outcome '{r['outcome']}' is not a concentration"
    over = r.get("over")
    if not pd.isna(over) and over == "first_recovery":
        return "value at each man's first recovered sample, among recoverers: not a concentration reached at follow-up"
    if r["value_unit"] != CONCENTRATION_UNIT:
        return f"value in '{r['value_unit']}' (total count), not a concentration in {CONCENTRATION_UNIT}"
    if r["statistic"] not in ("mean", "median"):
        return f"statistic '{r['statistic']}' is neither a mean nor a median"
    if pd.isna(r["value"]) or r["value"] <= 0:
        return "concentration of 0 or missing: a log-normal model cannot use it"
    if pd.isna(r["n"]) and pd.isna(r["arm_n"]):
        return "no number of men"
    return None


def _dispersion(r: pd.Series, size: int) -> dict:
    """The reported dispersion in the form the likelihood uses, and a note on what was used."""
    out = {"sd": np.nan, "q1": np.nan, "q3": np.nan, "min": np.nan, "max": np.nan, "dispersion_used": "none reported"}
    kind = r["dispersion_type"]
    if pd.isna(kind):
        return out
    if r["statistic"] == "mean":
        if kind == "sd":
            out.update(sd=r["dispersion_value"], dispersion_used="SD")
        elif kind in ("se", "ci95"):
            se, used = mean_standard_error(kind, r["dispersion_value"], r["lower"], r["upper"], size)
            out.update(sd=se * math.sqrt(size), dispersion_used=f"{used} x sqrt(n) = SD" if se > 0 else f"{kind}: {used}")
        else:
            out["dispersion_used"] = f"{kind} with a mean is not used (only SD, SE or 95% CI of the mean)"
    else:
        if kind == "iqr" and r["lower"] > 0:
            out.update(q1=r["lower"], q3=r["upper"], dispersion_used="IQR")
        elif kind == "range" and r["lower"] > 0 and size >= 2:
            out.update(min=r["lower"], max=r["upper"], dispersion_used="range")
        else:
            out["dispersion_used"] = (
                f"{kind} with a median is not used (only an IQR, or a range with a positive lower end and n >= 2)"
            )
    return out


def prepare(harmonised: pd.DataFrame, selection) -> ModelData:
    """Select one concentration summary per arm and lay out the likelihood terms."""
    df, excluded = select_rows(harmonised, selection, own=("concentration",))
    reasons = df.apply(_reason, axis=1) if len(df) else pd.Series(dtype=object)
    for i, r in df[reasons.notna()].iterrows():
        excluded.append({"outcome_id": r.outcome_id, "arm_id": r.arm_id, "study_id": r.study_id, "reason": reasons[i]})
    cand, overlap = resolve_overlaps(df[reasons.isna()] if len(df) else df)
    excluded += overlap
    cand = cand.assign(_time=cand["time_months"].fillna(np.inf))  # no time = end of follow-up
    chosen, dropped = one_row_per_arm(cand, ["_time", "outcome_id"], [False, True], "a later time")
    excluded += dropped
    used = chosen.drop(columns=["_time"]).reset_index(drop=True)
    used["size"] = used["n"].fillna(used["arm_n"]).astype(int)
    disp = pd.DataFrame([_dispersion(r, s) for (_, r), s in zip(used.iterrows(), used["size"], strict=True)])
    used = pd.concat([used, disp], axis=1) if len(used) else used.assign(**{c: [] for c in disp.columns})
    coords = arm_coords(used)
    terms = {
        "conc_mean": used[used["statistic"] == "mean"],
        "conc_median": used[used["statistic"] == "median"],
    }
    return ModelData(used=used, exclusions=exclusion_frame(excluded), coords=coords, terms=terms)


def build(data: ModelData, priors: dict[str, float], predict=None) -> pm.Model:
    """Build the PyMC model (see the module docstring for the equations); ``predict`` (any true
    value) adds the new-study prediction variable."""
    used = data.used
    if len(used) == 0:
        raise ValueError("lognormal_concentration: no arm has a usable concentration summary")
    c = data.coords
    arm_index = {a: i for i, a in enumerate(c["arm"])}
    study_idx = pd.Categorical(used["study_id"], categories=c["study"]).codes
    strategy_idx = pd.Categorical(used["strategy"], categories=c["strategy"]).codes
    pop_idx = pd.Categorical(used["population"], categories=c["population"]).codes
    with pm.Model(coords=pymc_coords(c)) as model:
        alpha = pm.Normal("strategy_log_median", priors["strategy_loc"], priors["strategy_sd"], dims="strategy")
        delta = population_shift("population_effect", priors["population_sd"], c)
        tau = pm.HalfNormal("study_sd", priors["study_sd_scale"])
        z = pm.Normal("study_z", 0.0, 1.0, dims="study")
        lam = pm.Normal("log_sigma_mean", priors["log_sigma_loc"], priors["log_sigma_sd"])
        mu = pm.Deterministic("arm_log_median", alpha[strategy_idx] + delta[pop_idx] + tau * z[study_idx], dims="arm")
        if priors["log_sigma_between_scale"] > 0:
            omega = pm.HalfNormal("log_sigma_sd", priors["log_sigma_between_scale"])
            w = pm.Normal("log_sigma_z", 0.0, 1.0, dims="arm")
            sigma = pm.Deterministic("arm_log_sd", pt.exp(lam + omega * w), dims="arm")
        else:  # one within-arm log-SD shared by every arm
            sigma = pm.Deterministic("arm_log_sd", pt.exp(lam) * pt.ones(len(used)), dims="arm")

        t = data.terms.get("conc_mean")  # a saved fit keeps only non-empty terms
        if t is not None and len(t):
            ix = np.array([arm_index[a] for a in t["arm_id"]])
            sd = t["sd"].to_numpy(float)
            model.add_coord("conc_mean_obs", t["arm_id"].tolist())
            weight = pm.Data("conc_mean_weight", np.ones(len(t)), dims="conc_mean_obs")
            observed_term(
                "conc_mean", mean_logp, t["value"].to_numpy(float),
                [np.nan_to_num(sd, nan=1.0), (~np.isnan(sd)).astype(float), t["size"].to_numpy(float), mu[ix], sigma[ix]],
                weight, "conc_mean_obs",
            )
        t = data.terms.get("conc_median")  # a saved fit keeps only non-empty terms
        if t is not None and len(t):
            ix = np.array([arm_index[a] for a in t["arm_id"]])
            logs = {k: np.log(t[k].to_numpy(float)) for k in ("q1", "q3", "min", "max")}
            model.add_coord("conc_median_obs", t["arm_id"].tolist())
            weight = pm.Data("conc_median_weight", np.ones(len(t)), dims="conc_median_obs")
            observed_term(
                "conc_median", median_logp, np.log(t["value"].to_numpy(float)),
                [*(np.nan_to_num(logs[k], nan=0.0) for k in ("q1", "q3", "min", "max")),
                 (~np.isnan(logs["q1"])).astype(float), (~np.isnan(logs["min"])).astype(float),
                 t["size"].to_numpy(float), mu[ix], sigma[ix]],
                weight, "conc_median_obs",
            )

        cell = alpha[:, None] + delta[None, :]
        pm.Deterministic("median_concentration", pt.exp(cell), dims=("strategy", "population"))
        pm.Deterministic("mean_concentration", pt.exp(cell + pt.exp(lam) ** 2 / 2), dims=("strategy", "population"))
        if predict:
            shift, _ = new_study(tau)
            pm.Deterministic("predicted_median", pt.exp(cell + shift), dims=("strategy", "population"))
    return model


SPEC = register(
    ModelSpec(
        name=NAME,
        description="Hierarchical log-normal meta-analysis of sperm concentration reached (means, medians, IQR, range)",
        default_priors=DEFAULT_PRIORS,
        prepare=prepare,
        build=build,
        headline=lazy("trt_recovery.concentration:headline"),
        reporter=lazy("trt_recovery.concentration:report_fit"),
        source_modules=("trt_recovery.models.lognormal_concentration", "trt_recovery.models.base",
                        "trt_recovery.survival.likelihood"),
        zero_allowed_priors=("log_sigma_between_scale",),
        prior_notes=PRIOR_NOTES,
    )
)
