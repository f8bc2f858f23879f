"""The log-normal concentration meta-analysis: likelihood terms, data preparation, a seeded fit."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import pytest
from scipy import integrate, stats

from helpers import concentration_row, simulate_concentration_arms
from trt_recovery.config import DataSelection, parse_config
from trt_recovery.fitting import fit_analysis
from trt_recovery.harmonise import HARMONISED_COLUMNS
from trt_recovery.models import REGISTRY, get_model
from trt_recovery.models import lognormal_concentration as L

SPEC = get_model("lognormal_concentration")


def test_registered():
    assert REGISTRY["lognormal_concentration"] is SPEC


@pytest.mark.parametrize("mu,sigma", [(1.0, 0.4), (2.5, 1.1)])
def test_lognormal_moments_match_scipy(mu, sigma):
    dist = stats.lognorm(sigma, scale=math.exp(mu))
    mean, var, m3, m4 = L.lognormal_moments(mu, sigma)
    assert mean == pytest.approx(dist.mean(), rel=1e-10)
    assert var == pytest.approx(dist.var(), rel=1e-10)
    assert m3 == pytest.approx(dist.stats(moments="s") * dist.var() ** 1.5, rel=1e-8)
    assert m4 == pytest.approx((dist.stats(moments="k") + 3) * dist.var() ** 2, rel=1e-8)


def test_mean_term_without_sd_is_the_clt_normal():
    mu, sigma, n = 2.0, 0.8, 30
    dist = stats.lognorm(sigma, scale=math.exp(mu))
    got = L.mean_logp(np.array([9.0]), np.array([123.0]), np.array([0.0]), n, mu, sigma)
    assert got[0] == pytest.approx(stats.norm.logpdf(9.0, dist.mean(), dist.std() / math.sqrt(n)))


def test_mean_and_sd_term_matches_simulated_sampling_distribution():
    """(mean, log SD) has the simulated moments, and the SD part is that conditional normal."""
    rng = np.random.default_rng(11)
    mu, sigma, n = 1.5, 0.5, 400
    x = np.exp(rng.normal(mu, sigma, size=(4000, n)))
    xbar, log_sd = x.mean(axis=1), np.log(x.std(axis=1, ddof=1))
    mean, var, m3, m4 = L.lognormal_moments(mu, sigma)
    kappa = (m4 - var**2) / var**2
    assert np.var(xbar) == pytest.approx(var / n, rel=0.1)
    assert np.mean(log_sd) == pytest.approx(0.5 * math.log(var) - kappa / (4 * n), abs=0.003)
    assert np.var(log_sd) == pytest.approx(kappa / (4 * n), rel=0.15)
    rho = (m3 / (2 * var * n)) / math.sqrt(var / n * kappa / (4 * n))
    assert np.corrcoef(xbar, log_sd)[0, 1] == pytest.approx(rho, abs=0.05)
    sd0 = math.exp(log_sd[0])
    lp = L.mean_logp(xbar[:1], np.array([sd0]), np.array([1.0]), n, mu, sigma)
    lp_mean = L.mean_logp(xbar[:1], np.array([sd0]), np.array([0.0]), n, mu, sigma)
    cov = m3 / (2 * var * n)
    loc = 0.5 * math.log(var) - kappa / (4 * n) + cov / (var / n) * (xbar[0] - mean)
    cond = stats.lognorm(math.sqrt(kappa / (4 * n) - cov**2 / (var / n)), scale=math.exp(loc))
    assert (lp - lp_mean)[0] == pytest.approx(cond.logpdf(sd0))


def test_quartile_covariance_matches_simulation():
    rng = np.random.default_rng(5)
    n = 401
    y = rng.normal(0.0, 1.0, size=(6000, n))
    q = np.quantile(y, [0.25, 0.5, 0.75], axis=1).T
    emp = np.cov(q, rowvar=False) * n
    np.testing.assert_allclose(emp, L.QUANTILE_COV, rtol=0.12)
    assert L.QUANTILE_COV[1, 1] == pytest.approx(math.pi / 2)


def test_median_alone_is_normal_on_log_scale_with_pi_over_2_variance():
    mu, sigma, n = 2.0, 0.9, 25
    got = L.median_logp(np.array([2.3]), *np.zeros((4, 1)), np.array([0.0]), np.array([0.0]), n, mu, sigma)
    assert got[0] == pytest.approx(stats.norm.logpdf(2.3, mu, sigma * math.sqrt(math.pi / 2 / n)))


def test_median_with_iqr_is_the_trivariate_normal():
    mu, sigma, n = 2.0, 0.9, 25
    obs = np.array([1.5, 2.1, 2.6])
    cov = sigma**2 / n * L.QUANTILE_COV
    want = stats.multivariate_normal(mu + sigma * stats.norm.ppf([0.25, 0.5, 0.75]), cov).logpdf(obs)
    got = L.median_logp(obs[1:2], obs[:1], obs[2:], np.zeros(1), np.zeros(1), np.ones(1), np.zeros(1), n, mu, sigma)
    assert got[0] == pytest.approx(want)


def test_range_term_is_a_density_of_the_sample_extremes():
    """Median-free part: integrates to one over min < max, and matches simulated extremes."""
    mu, sigma, n = 1.0, 0.7, 6

    def density(lo, hi):  # vectorised over a grid; zero where lo >= hi
        lo, hi = np.broadcast_arrays(lo, hi)
        med = 0.5 * (lo + hi)
        z = np.zeros(lo.size)
        both = L.median_logp(med.ravel(), z, z, lo.ravel(), hi.ravel(), z, np.ones(lo.size), n, mu, sigma)
        alone = L.median_logp(med.ravel(), z, z, z, z, z, z, n, mu, sigma)
        return np.where(lo < hi, np.exp(both - alone).reshape(lo.shape), 0.0)

    grid = np.linspace(mu - 6 * sigma, mu + 6 * sigma, 1201)
    lo, hi = np.meshgrid(grid, grid, indexing="ij")
    total = integrate.simpson(integrate.simpson(density(lo, hi), x=grid, axis=1), x=grid)
    assert total == pytest.approx(1.0, abs=1e-4)
    rng = np.random.default_rng(2)
    y = rng.normal(mu, sigma, size=(20000, n))
    p_sim = np.mean((y.min(axis=1) < 0.6) & (y.max(axis=1) > 1.4))
    gl, gh = np.linspace(mu - 6 * sigma, 0.6, 801), np.linspace(1.4, mu + 6 * sigma, 801)
    lo, hi = np.meshgrid(gl, gh, indexing="ij")
    p_int = integrate.simpson(integrate.simpson(density(lo, hi), x=gh, axis=1), x=gl)
    assert p_sim == pytest.approx(p_int, abs=0.01)


def test_terms_agree_between_numpy_and_pytensor():
    rng = np.random.default_rng(0)
    k = 5
    mu, sigma, n = rng.normal(2, 0.5, k), rng.uniform(0.5, 1.2, k), rng.integers(5, 60, k).astype(float)
    xbar, sd, has = rng.uniform(5, 30, k), rng.uniform(3, 30, k), np.array([1, 0, 1, 0, 1.0])
    np.testing.assert_allclose(
        L.mean_logp(xbar, sd, has, n, pt.as_tensor(mu), pt.as_tensor(sigma)).eval(),
        L.mean_logp(xbar, sd, has, n, mu, sigma), rtol=1e-8,
    )
    lm = rng.normal(2, 0.3, k)
    args = (lm, lm - 0.5, lm + 0.5, lm - 1.5, lm + 1.5, np.array([1, 0, 1, 0, 0.0]), np.array([0, 1, 1, 0, 1.0]), n)
    np.testing.assert_allclose(
        L.median_logp(*args, pt.as_tensor(mu), pt.as_tensor(sigma)).eval(),
        L.median_logp(*args, mu, sigma), rtol=1e-8,
    )


def _table() -> pd.DataFrame:
    rows = [
        concentration_row(outcome_id="a_1", arm_id="a", study_id="s1", value=20.0, statistic="mean", n=30,
             dispersion_type="se", dispersion_value=2.0, time_months=6.0),
        concentration_row(outcome_id="a_0", arm_id="a", study_id="s1", value=10.0, statistic="mean", n=30, time_months=3.0),
        concentration_row(outcome_id="b_1", arm_id="b", study_id="s2", value=8.0, statistic="median", arm_n=12,
             dispersion_type="iqr", lower=3.0, upper=15.0, population="aas", strategy="hcg"),
        concentration_row(outcome_id="c_1", arm_id="c", study_id="s3", value=12.0, statistic="median", n=9,
             dispersion_type="range", lower=0.5, upper=40.0, population="hh", strategy="hcg_fsh"),
        concentration_row(outcome_id="d_1", arm_id="d", study_id="s3", value=30.0, statistic="mean", n=10,
             dispersion_type="ci95", lower=20.0, upper=40.0, population="hh", strategy="hcg"),
        concentration_row(outcome_id="e_1", arm_id="e", study_id="s4", value=150.0, statistic="mean", n=19, value_unit="million"),
        concentration_row(outcome_id="f_1", arm_id="f", study_id="s4", value=0.0, statistic="mean", n=19),
        concentration_row(outcome_id="g_1", arm_id="g", study_id="s5", value=0.0, statistic=np.nan, n=8, outcome="recovered_count",
             events=5, threshold="any"),
        concentration_row(outcome_id="h_1", arm_id="h", study_id="s6", value=5.0, statistic="median", n=7,
             dispersion_type="sd", dispersion_value=2.0),
    ]
    return pd.DataFrame(rows, columns=HARMONISED_COLUMNS)


def test_prepare_routes_each_format_and_reports_every_otherconcentration_row():
    table = _table()
    md = SPEC.prepare(table, DataSelection())
    used = md.used.set_index("arm_id")
    assert set(used.index) == {"a", "b", "c", "d", "h"}
    assert set(md.used["outcome_id"]) | set(md.exclusions["outcome_id"]) == set(table["outcome_id"])
    assert not set(md.used["outcome_id"]) & set(md.exclusions["outcome_id"])
    reasons = md.exclusions.set_index("outcome_id")["reason"]
    assert "a later time" in reasons["a_0"]
    assert "total count" in reasons["e_1"]
    assert "log-normal model cannot use it" in reasons["f_1"]
    assert "not a concentration" in reasons["g_1"]
    # medians are never treated as means
    assert set(md.terms["conc_median"]["arm_id"]) == {"b", "c", "h"}
    assert set(md.terms["conc_mean"]["arm_id"]) == {"a", "d"}
    assert used.loc["a", "sd"] == pytest.approx(2.0 * math.sqrt(30))
    assert used.loc["d", "sd"] == pytest.approx(20.0 / (2 * 1.959964) * math.sqrt(10), rel=1e-5)
    assert used.loc["b", "size"] == 12 and (used.loc["b", "q1"], used.loc["b", "q3"]) == (3.0, 15.0)
    assert (used.loc["c", "min"], used.loc["c", "max"]) == (0.5, 40.0)
    assert "not used" in used.loc["h", "dispersion_used"]
    assert md.coords["population"][0] == "trt"


def test_model_builds_with_every_term_and_finite_logp():
    md = SPEC.prepare(_table(), DataSelection())
    model = SPEC.build(md, SPEC.default_priors)
    assert {"conc_mean", "conc_median", "median_concentration"} <= set(model.named_vars)
    assert "predicted_median" in SPEC.build(md, SPEC.default_priors, predict=True).named_vars
    lp = model.point_logps()
    assert all(np.isfinite(v) for v in lp.values())


def test_empty_selection_is_a_clear_error():
    md = SPEC.prepare(_table(), DataSelection(populations=("mixed",)))
    with pytest.raises(ValueError, match="no arm has a usable concentration"):
        SPEC.build(md, SPEC.default_priors)


CONFIG = {
    "name": "conc_test",
    "model": "lognormal_concentration",
    "sampler": {"backend": "numpyro", "draws": 500, "tune": 500, "chains": 2, "cores": 1,
                "target_accept": 0.95, "seed": 4},
    "checks": {"rhat_max": 1.02, "ess_bulk_min": 200, "max_divergences": 0},
}


@pytest.mark.slow
def test_seeded_fit_recovers_simulated_medians(tmp_path):
    table, truth = simulate_concentration_arms(seed=3)
    res = fit_analysis(parse_config(CONFIG), harmonised_outcomes=table, save=False)
    assert res.passed, res.convergence
    post = res.posterior
    for s, a in truth["alpha"].items():
        lo, hi = np.quantile(post["strategy_log_median"].sel(strategy=s).values, [0.025, 0.975])
        assert lo < a < hi, (s, lo, a, hi)
    lo, hi = np.quantile(np.exp(post["log_sigma_mean"].values), [0.025, 0.975])
    assert lo < truth["sigma"] < hi


def test_prior_config_rules_for_locations_and_zero_scales():
    from trt_recovery.config import ConfigError

    base = {**CONFIG, "priors": {"strategy_loc": -1.0, "log_sigma_loc": -0.5, "log_sigma_between_scale": 0}}
    cfg = parse_config(base, "analysis/x.yaml")
    assert cfg.priors["strategy_loc"] == -1.0 and cfg.priors["log_sigma_between_scale"] == 0.0
    with pytest.raises(ConfigError, match="'priors.study_sd_scale': must be a positive number"):
        parse_config({**CONFIG, "priors": {"study_sd_scale": 0}}, "analysis/x.yaml")
    with pytest.raises(ConfigError, match="'priors.log_sigma_between_scale': must be zero or positive"):
        parse_config({**CONFIG, "priors": {"log_sigma_between_scale": -1}}, "analysis/x.yaml")


def test_shared_log_sd_when_between_arm_scale_is_zero():
    md = SPEC.prepare(_table(), DataSelection())
    model = SPEC.build(md, {**SPEC.default_priors, "log_sigma_between_scale": 0.0})
    assert "log_sigma_z" not in model.named_vars
    sd = pm_draw(model["arm_log_sd"])
    assert np.allclose(sd, sd[0])


def pm_draw(var):
    import pymc as pm

    return pm.draw(var, random_seed=1)


def test_saved_fit_with_an_empty_term_rebuilds_for_predictions(mocked_sampler, tmp_path):
    """A saved fit keeps only non-empty likelihood terms; rebuilding it (for predictions) must not
    require the empty ones (here: medians only, no means)."""
    import pytensor

    from helpers import mock_config
    from trt_recovery.posterior import open_fit

    table = _table()
    medians = table[table["statistic"] != "mean"]
    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        res = fit_analysis(mock_config("conc_medians", "lognormal_concentration"), harmonised_outcomes=medians,
                           path=tmp_path / "conc_medians.nc", prior_draws=100)
        fit = open_fit(res.path)
        assert "conc_mean" not in fit.terms and len(fit.terms["conc_median"])
        pred = fit.predictions(["predicted_median"], seed=1)
    assert np.isfinite(pred["predicted_median"].values).all()
