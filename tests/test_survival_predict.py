"""Posterior quantities through the model's graph, on a hand-built posterior with closed-form answers."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import hand_built
from trt_recovery.schema import load_schema
from trt_recovery.survival.families import get_family
from trt_recovery.survival.predict import Predictions, Profile, ProfileError, contrast_vs_none, predict

MU0, K, ETA0 = np.log(5.0), 1.5, -2.0
REF = dict(preparation="short_ester_injection")


def _fixed(fit, strategy_shift=-0.5, study_sd=0.4, cure=ETA0):
    """The shift from 'any' to '20' is 0.7 on log time and 0.35 on the logit (the simulated studies
    use 'any' and '20', the top of the ladder, so the fit has one ladder segment ending at '20')."""
    n_steps = len(load_schema().threshold_ladder) - 1
    return hand_built(fit, {
        "time_intercept": MU0, "cure_intercept": cure, "weibull_shape": K,
        "strategy_time": {"hcg_serm": strategy_shift}, "strategy_cure": {}, "population_time": {},
        "population_cure": {}, "threshold_time_total": 0.1 * n_steps, "threshold_cure_total": 0.05 * n_steps,
        "threshold_time_step": 0.1 * n_steps, "threshold_cure_step": 0.05 * n_steps,
        "study_time_sd": study_sd, "study_cure_sd": study_sd,
    })


@pytest.fixture(scope="module")
def fixed(mock_survival_fit):
    return _fixed(mock_survival_fit)


def test_recovered_by_is_the_cure_mixture_curve(fixed):
    t = np.array([1.0, 6.0, 24.0])
    pred = Predictions(fixed, [Profile(strategy="none", **REF), Profile(strategy="hcg_serm", **REF)])
    got = pred.recovered_by(t)
    weib = get_family("weibull")
    expected = (1 / (1 + np.exp(ETA0))) * np.exp(weib.log_cdf(t, MU0, K))
    np.testing.assert_allclose(got.isel(profile=0).values, np.broadcast_to(expected, got.isel(profile=0).shape), rtol=1e-10)
    expected_serm = (1 / (1 + np.exp(ETA0))) * np.exp(weib.log_cdf(t, MU0 - 0.5, K))
    np.testing.assert_allclose(got.isel(profile=1, chain=0, draw=0).values, expected_serm, rtol=1e-10)
    assert set(got.dims) == {"chain", "draw", "profile", "time"}


def test_stricter_threshold_is_never_reached_sooner(fixed):
    thresholds = ("any", "5", "15", "20")
    pred = Predictions(fixed, [Profile(threshold=h, **REF) for h in thresholds])
    r = pred.recovered_by([3.0, 12.0]).values  # chain, draw, profile, time
    assert np.all(np.diff(r, axis=2) < 0)  # in every draw
    # thresholds that end a ladder segment of the fit follow the fixed steps exactly
    mu = pred.mu.isel(chain=0, draw=0).values
    np.testing.assert_allclose(mu[[0, 3]] - MU0, [0.0, 0.7], atol=1e-12)
    # '5' lies inside the segment: its share of the 'any'-to-'20' shift is drawn from the prior
    share = (pred.mu.isel(profile=1) - MU0).values.ravel() / 0.7
    assert 0 < share.min() and share.max() < 1 and np.std(share) > 0.05


def test_median_solves_half_recovered_and_is_not_reached_when_most_never_recover(fixed, mock_survival_fit):
    pred = Predictions(fixed, [Profile(**REF)])
    m = float(pred.median_time().values.ravel()[0])
    assert float(pred.recovered_by([m]).values.ravel()[0]) == pytest.approx(0.5, rel=1e-9)
    assert float(pred.p_never().values.ravel()[0]) == pytest.approx(1 / (1 + np.exp(-ETA0)))
    out = predict(_fixed(mock_survival_fit, cure=1.0), Profile(**REF), [6.0])
    med = out["average_study"]["median_time_months"]
    assert med["p_not_reached"] == 1.0 and out["average_study"]["p_median_not_reached"] == 1.0
    assert np.isinf(med["median"]) and not np.isnan(med["lower"]) and not np.isnan(med["upper"])


def test_new_study_is_wider_than_average_study_and_seeded(mock_survival_fit):
    fit = _fixed(mock_survival_fit, study_sd=0.6)
    out = predict(fit, Profile(strategy="hcg_serm", **REF), [6.0], seed=3)
    avg, new = out["average_study"]["recovered_by"][0], out["new_study"]["recovered_by"][0]
    assert avg["upper"] - avg["lower"] < 1e-12 < new["upper"] - new["lower"]
    again = predict(fit, Profile(strategy="hcg_serm", **REF), [6.0], seed=3)
    assert again["new_study"] == out["new_study"]


def test_notes_count_the_evidence_and_know_the_population(fixed):
    out = predict(fixed, Profile(strategy="hcg_serm", population="trt"), [6.0])
    ev = out["evidence"]
    assert ev["studies"] >= 1 and ev["rows"] >= 1 and out["note"].startswith("Direct evidence:")
    assert "No direct evidence for strategy 'none' in population 'aas'" in predict(fixed, Profile(population="aas"), [6.0])["note"]
    assert "its effect is the prior only" in predict(fixed, Profile(strategy="gonadorelin"), [6.0])["note"]
    assert "effect of age (years) could not be estimated" in predict(fixed, Profile(covariates={"age": 40}), [6.0])["note"]


@pytest.mark.parametrize(("profile", "message"), [
    (Profile(strategy="hcg_only"), "unknown strategy 'hcg_only'"),
    (Profile(threshold="7"), "unknown threshold '7'"),
    (Profile(covariates={"age": 200}), r"age \(years\) must be in \[12, 90\]"),
    (Profile(covariates={"duration": float("nan")}), "must be in"),
    (Profile(covariates={"height": 1.8}), "unknown covariate 'height'"),
    # inside the bounds but log(0 / 12) is not finite: refused, not answered with NaN
    (Profile(covariates={"duration": 0.0}), "outside what the model can use"),
])
def test_bad_profiles_are_refused(fixed, profile, message):
    with pytest.raises(ProfileError, match=message):
        predict(fixed, profile, [6.0])


def test_contrast_against_spontaneous_recovery(fixed):
    c = contrast_vs_none(fixed, Profile(strategy="hcg_serm", **REF), 6.0)
    assert c["diff_recovered_by_t"]["median"] > 0 and c["p_better_than_none"] == 1.0
    assert c["median_time_ratio"]["median"] == pytest.approx(np.exp(-0.5), rel=1e-9)
    assert contrast_vs_none(fixed, Profile(strategy="none", **REF), 6.0)["diff_recovered_by_t"]["median"] == 0


def test_claims_are_evaluated_or_declared_untestable(fixed):
    from trt_recovery.survival.claims import evaluate_claims

    c = evaluate_claims(fixed).set_index("claim")
    assert len(c) == 5
    assert c.loc["Longer TRT means slower recovery", "estimate"] == "not estimable"
    assert np.isnan(c.loc["Enclomiphene preserves sperm output better than TRT", "posterior_probability"])
    # pi = logit^-1(-2) = 0.12 in every draw, so P(ever >= 0.96) is 0
    assert c.loc["hCG + SERM restores sperm in about 96% of men in about 4.6 months", "posterior_probability"] == 0.0
    assert "No direct evidence for strategy 'hcg'" in c.loc["hCG alone is slower than hCG combinations", "evidence"]
