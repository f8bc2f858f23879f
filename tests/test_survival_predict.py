"""Posterior quantities on a hand-built posterior whose answers are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from trt_recovery.models.survival_cure import THRESHOLD_LADDER
from trt_recovery.schema import load_schema
from trt_recovery.survival.families import get_family
from trt_recovery.survival.predict import (
    Profile,
    ProfileError,
    contrast_vs_none,
    median_time,
    p_never,
    predict,
    recovered_by,
)

D = 400
MU0, K, ETA0 = np.log(5.0), 1.5, -2.0
META = {"model": "survival_cure_weibull", "used_rows": [{"strategy": "hcg_serm", "population": "trt", "study_id": "fake2020"}]}


def fake_posterior(strategy_shift=-0.5, study_sd=0.4):
    schema = load_schema()
    strategies = [s for s in schema.terms("strategy") if s != "none"]
    populations = [p for p in schema.terms("population") if p != "trt"]
    preps = [p for p in schema.terms("androgen_preparation") if p != "short_ester_injection"] + ["unknown", "none_hh"]
    steps = list(THRESHOLD_LADDER[1:])
    rng = np.random.default_rng(0)

    st = np.zeros((1, D, len(strategies)))
    st[..., strategies.index("hcg_serm")] = strategy_shift
    ds = xr.Dataset(
        {
            "time_intercept": (("chain", "draw"), np.full((1, D), MU0)),
            "cure_intercept": (("chain", "draw"), np.full((1, D), ETA0)),
            "weibull_shape": (("chain", "draw"), np.full((1, D), K)),
            "strategy_time": (("chain", "draw", "strategy"), st),
            "strategy_cure": (("chain", "draw", "strategy"), np.zeros((1, D, len(strategies)))),
            "population_time": (("chain", "draw", "population"), np.zeros((1, D, len(populations)))),
            "population_cure": (("chain", "draw", "population"), np.zeros((1, D, len(populations)))),
            "preparation_time": (("chain", "draw", "preparation"), np.zeros((1, D, len(preps)))),
            "threshold_time_step": (("chain", "draw", "threshold_step"), np.full((1, D, len(steps)), 0.1)),
            "threshold_cure_step": (("chain", "draw", "threshold_step"), np.full((1, D, len(steps)), 0.05)),
            "threshold_time_free": (("chain", "draw", "threshold_free"), rng.normal(size=(1, D, 1))),
            "threshold_cure_free": (("chain", "draw", "threshold_free"), np.zeros((1, D, 1))),
            "study_time_sd": (("chain", "draw"), np.full((1, D), study_sd)),
            "study_cure_sd": (("chain", "draw"), np.full((1, D), study_sd)),
        },
        coords={"chain": [0], "draw": np.arange(D), "strategy": strategies, "population": populations,
                "preparation": preps, "threshold_step": steps, "threshold_free": ["tmc5"]},
    )
    return xr.DataTree.from_dict({"posterior": ds})


def test_recovered_by_is_the_cure_mixture_curve():
    dt = fake_posterior()
    t = np.array([1.0, 6.0, 24.0])
    got = recovered_by(dt, META, Profile(strategy="none"), t)
    expected = (1 / (1 + np.exp(ETA0))) * np.exp(get_family("weibull").log_cdf(t, MU0, K))
    np.testing.assert_allclose(got, np.broadcast_to(expected, got.shape), rtol=1e-12)
    serm = recovered_by(dt, META, Profile(strategy="hcg_serm"), t)
    expected_serm = (1 / (1 + np.exp(ETA0))) * np.exp(get_family("weibull").log_cdf(t, MU0 - 0.5, K))
    np.testing.assert_allclose(serm[0], expected_serm, rtol=1e-12)


def test_stricter_threshold_is_never_reached_sooner():
    dt = fake_posterior()
    t = np.array([3.0, 12.0])
    curves = [recovered_by(dt, META, Profile(threshold=h), t).mean(axis=0) for h in ("any", "5", "20", "baseline")]
    for a, b in zip(curves, curves[1:], strict=False):
        assert np.all(b < a)


def test_median_solves_half_recovered_and_is_infinite_when_most_never_recover():
    dt = fake_posterior()
    m = median_time(dt, META, Profile())
    r = recovered_by(dt, META, Profile(), [m[0]])
    assert r[0, 0] == pytest.approx(0.5, rel=1e-9)
    assert p_never(dt, META, Profile())[0] == pytest.approx(1 / (1 + np.exp(-ETA0)))
    # with a free threshold effect drawn at random, some draws can have pi > 0.5 only via cure; force it
    dt2 = fake_posterior()
    dt2["posterior"]["cure_intercept"] = dt2["posterior"]["cure_intercept"] * 0 + 1.0
    assert np.all(np.isinf(median_time(dt2, META, Profile())))


def test_new_study_is_wider_than_average_study_and_seeded():
    dt = fake_posterior(study_sd=0.6)
    out = predict(dt, META, Profile(strategy="hcg_serm"), [6.0], seed=3)
    avg, new = out["average_study"]["recovered_by"][0], out["new_study"]["recovered_by"][0]
    assert new["upper"] - new["lower"] > avg["upper"] - avg["lower"]
    again = predict(dt, META, Profile(strategy="hcg_serm"), [6.0], seed=3)
    assert again["new_study"] == out["new_study"]


def test_notes_and_errors():
    dt = fake_posterior()
    out = predict(dt, META, Profile(strategy="gonadorelin"), [6.0])
    assert "No direct evidence for strategy 'gonadorelin'" in out["note"]
    assert predict(dt, META, Profile(strategy="hcg_serm"), [6.0])["note"] == ""
    out = predict(dt, META, Profile(strategy="hcg_serm", age=40), [6.0])
    assert "effect of age could not be estimated" in out["note"]
    with pytest.raises(ProfileError, match="unknown strategy 'hcg_only'"):
        predict(dt, META, Profile(strategy="hcg_only"), [6.0])
    with pytest.raises(ProfileError, match="unknown threshold '7'"):
        predict(dt, META, Profile(threshold="7"), [6.0])
    with pytest.raises(ProfileError, match="age must be in"):
        predict(dt, META, Profile(age=200), [6.0])


def test_contrast_against_spontaneous_recovery():
    dt = fake_posterior()
    c = contrast_vs_none(dt, META, Profile(strategy="hcg_serm"), 6.0)
    assert c["diff_recovered_by_t"]["median"] > 0 and c["p_better_than_none"] == 1.0
    assert c["median_time_ratio"]["median"] == pytest.approx(np.exp(-0.5), rel=1e-9)
    assert contrast_vs_none(dt, META, Profile(strategy="none"), 6.0)["diff_recovered_by_t"]["median"] == 0


def test_claims_are_evaluated_or_declared_untestable():
    from trt_recovery.survival.claims import evaluate_claims

    dt = fake_posterior()
    c = evaluate_claims(dt, META).set_index("claim")
    assert len(c) == 5
    assert c.loc["Longer TRT means slower recovery", "estimate"] == "not estimable"
    assert np.isnan(c.loc["Enclomiphene preserves sperm output better than TRT", "posterior_probability"])
    p = c.loc["hCG + SERM restores sperm in about 96% of men in about 4.6 months", "posterior_probability"]
    # the fake posterior has pi = logit^-1(-2) = 0.12 in every draw, so P(ever >= 0.96) is 0
    assert p == 0.0
    assert "No direct evidence for strategy 'hcg'" in c.loc["hCG alone is slower than hCG combinations", "evidence"]
