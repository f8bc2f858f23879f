"""The survival model's one regression structure: the graph, the simulator and predictions agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trt_recovery.config import DataSelection
from trt_recovery.models import get_model
from trt_recovery.survival import design
from trt_recovery.survival.simulate import simulate_studies

SPEC = get_model("survival_cure_weibull")


def _table_with_covariates():
    df, _ = simulate_studies(10, seed=8)
    arms = sorted(df["arm_id"].unique())
    # three arms report age and duration, one reports only duration; the rest are latent
    for a, age, months in zip(arms[:4], [30.0, 42.0, 37.0, np.nan], [6.0, 24.0, 60.0, 12.0], strict=True):
        df.loc[df.arm_id == a, "age_years"] = age
        df.loc[df.arm_id == a, "androgen_duration_months"] = months
    return df


def test_graph_and_numpy_give_the_same_arm_predictors():
    md = SPEC.prepare(_table_with_covariates(), DataSelection())
    included = design.included_covariates(md.arms)
    assert [c.name for c in included] == ["duration", "age"]
    model = SPEC.build(md, SPEC.default_priors)
    point = model.initial_point()
    rng = np.random.default_rng(3)
    point = {k: v + rng.normal(scale=0.3, size=np.shape(v)) for k, v in point.items()}
    names = ["arm_time_logscale", "arm_cure_logit", "log_duration", "age_std", "study_time_sd", "study_time_z",
             "study_cure_sd", "study_cure_z", "time_intercept", "cure_intercept", "strategy_time", "strategy_cure",
             "population_time", "population_cure", "duration_time", "duration_cure", "age_time", "age_cure"]
    assert "preparation_time" not in model.named_vars  # every simulated arm has the reference preparation
    values = dict(zip(names, model.compile_fn([model[n] for n in names], inputs=model.value_vars,
                                               on_unused_input="ignore")(point), strict=True))
    coords = md.coords
    study_idx = pd.Categorical(md.arms["study_id"], categories=coords["study"]).codes
    mu, eta = design.linear_predictors(
        values, md.arms, coords, {"duration": values["log_duration"], "age": values["age_std"]},
        study_time=values["study_time_sd"] * values["study_time_z"][study_idx],
        study_cure=values["study_cure_sd"] * values["study_cure_z"][study_idx],
    )
    np.testing.assert_allclose(mu, values["arm_time_logscale"], rtol=1e-12)
    np.testing.assert_allclose(eta, values["arm_cure_logit"], rtol=1e-12)
    # reported covariates are used as reported (on the model scale); missing ones are latent
    reported = md.arms["age_years"].notna().to_numpy()
    np.testing.assert_allclose(values["age_std"][reported], (md.arms["age_years"][reported] - 35) / 10)
    # each reported value is labelled by its arm (leave-one-study-out finds a study's observations by it)
    assert model.named_vars_to_dims["age_std_reported"] == ("age_std_reported_arm",)
    assert list(model.coords["age_std_reported_arm"]) == list(md.arms.index[reported])
    np.testing.assert_allclose(model.rvs_to_values[model["age_std_reported"]].data,
                               (md.arms["age_years"][reported] - 35) / 10)


def test_threshold_effects_follow_the_schema_ladder():
    every = [label for label, _ in design.ladder_segments(design.load_schema().threshold_ladder)]
    steps = np.array([0.1, 0.2, 0.0, 0.3, 0.0, 0.0, 0.5])
    eff = design.threshold_effect(["any", "1", "5", "20", "tmc5"], steps, np.array([0.7]), ["tmc5"], every)
    np.testing.assert_allclose(eff, [0.0, 0.1, 0.6, 1.1, 0.7])
    with pytest.raises(KeyError, match="no effect"):
        design.threshold_effect(["improvement"], steps, None, [], every)


def test_ladder_segments_end_at_the_used_thresholds():
    segs = design.ladder_segments(["any", "5", "10", "tmc5"])
    assert segs == [("5", ["1", "1.5", "3", "5"]), ("10", ["10"]), ("20", ["15", "20"])]
    assert design.ladder_segments(["tmc5"]) == [("20", ["1", "1.5", "3", "5", "10", "15", "20"])]
    # a segment-ending threshold needs no split; one inside a segment does
    seg_steps = np.array([0.4, 0.3, 0.1])
    labels = [label for label, _ in segs]
    np.testing.assert_allclose(design.threshold_effect(["5", "10", "20"], seg_steps, None, [], labels),
                               [0.4, 0.7, 0.8])
    with pytest.raises(KeyError, match="inside a ladder segment"):
        design.threshold_effect(["15"], seg_steps, None, [], labels)
    np.testing.assert_allclose(
        design.threshold_effect(["15"], seg_steps, None, [], labels, {"20": np.array([0.25, 0.75])}), [0.725])


def test_simulator_uses_the_design_predictor():
    from trt_recovery.survival.simulate import Truth

    truth = Truth()
    par, levels = truth.parameters()
    rows = pd.DataFrame({"strategy": ["none", "hcg_serm"], "population": ["contraception", "trt"],
                         "preparation": ["short_ester_injection"] * 2})
    mu, eta = design.linear_predictors(par, rows, levels, {}, ["20", "any"])
    assert mu[0] == pytest.approx(truth.time_intercept + truth.population_time["contraception"] + 0.5)
    assert mu[1] == pytest.approx(truth.time_intercept + truth.strategy_time["hcg_serm"])
    assert eta[1] == pytest.approx(truth.cure_intercept + truth.strategy_cure["hcg_serm"])


def test_unknown_levels_are_refused():
    rows = pd.DataFrame({"strategy": ["nope"], "population": ["trt"], "preparation": ["gel"]})
    with pytest.raises(KeyError, match="nope"):
        design.linear_predictors({"time_intercept": 0.0, "cure_intercept": 0.0, "strategy_time": np.zeros(1)},
                                 rows, {"strategy": ["hcg"]}, {})


def test_prediction_block_draws_levels_without_data_from_their_prior(mock_survival_fit):
    """A strategy with no arm is not a parameter of the fit; its prediction carries the prior."""
    from helpers import hand_built
    from trt_recovery.survival.predict import Predictions, Profile

    fixed = hand_built(mock_survival_fit, {"time_intercept": 1.0, "cure_intercept": -2.0,
                                            "strategy_time": {}, "strategy_cure": {}, "population_time": {},
                                            "population_cure": {}})
    profiles = [Profile(strategy=s, preparation="short_ester_injection") for s in ("hcg_serm", "gonadorelin")]
    pred = Predictions(fixed, profiles, seed=2)
    observed, unobserved = pred.mu.isel(profile=0).values.ravel(), pred.mu.isel(profile=1).values.ravel()
    np.testing.assert_allclose(observed, 1.0)
    sd = SPEC.default_priors["strategy_time_sd"]
    assert np.std(unobserved) == pytest.approx(sd, rel=0.15) and abs(np.mean(unobserved) - 1.0) < 0.1
    # the same seed gives the same draws
    again = Predictions(fixed, profiles, seed=2)
    np.testing.assert_array_equal(again.mu.values, pred.mu.values)


def test_adding_a_covariate_is_one_entry(monkeypatch):
    """A new covariate declared once reaches the graph, the profile table and the CLI flags."""
    from trt_recovery import cli

    extra = design.Covariate("bmi", "bmi_std", "age_years", "continuous", lambda v: (np.asarray(v) - 25) / 5,
                             "body-mass index", "--bmi", (10.0, 60.0))
    monkeypatch.setattr(design, "COVARIATES", (*design.COVARIATES, extra))
    monkeypatch.setitem(design.COVARIATE, "bmi", extra)
    assert "--bmi" in cli.build_parser()._subparsers._group_actions[0].choices["predict"].format_help()
    md = SPEC.prepare(_table_with_covariates(), DataSelection())
    model = SPEC.build(md, SPEC.default_priors)
    assert {"bmi_std", "bmi_time", "bmi_cure"} <= set(model.named_vars)


def test_collapsed_ladder_prior_equals_the_full_dirichlet_split():
    """Aggregation property: segment weights ~ Dir(size), splits ~ Dir(1): the same prior as every step."""
    from scipy import stats

    rng = np.random.default_rng(0)
    n = 20000
    full = rng.dirichlet(np.ones(7), size=n)  # one weight per ladder step
    seg = rng.dirichlet([4.0, 3.0], size=n)  # segments ending at '5' and '20'
    split = rng.dirichlet(np.ones(3), size=n)  # the '20' segment's split, drawn at prediction time
    labels = ["5", "20"]
    for threshold, full_share in (("5", full[:, :4].sum(1)), ("10", full[:, :5].sum(1)), ("15", full[:, :6].sum(1))):
        collapsed = np.array([design.threshold_effect([threshold], seg[i], None, [], labels, {"20": split[i]})[0]
                              for i in range(2000)])
        assert stats.ks_2samp(collapsed, full_share[:2000]).pvalue > 0.001, threshold


def test_recovery_coverage_per_group_says_what_chance_allows():
    from trt_recovery.survival.recovery_study import group_coverage

    rows = ([{"parameter": "weibull_shape", "covered": i < 18} for i in range(20)]
            + [{"parameter": f"strategy_time[{s}]", "covered": True} for s in ("a", "b") for _ in range(20)])
    g = group_coverage(pd.DataFrame(rows)).set_index("group")
    assert g.loc["weibull_shape", "coverage_90"] == 0.9 and g.loc["weibull_shape", "inside_window"]
    assert g.loc["strategy_time", "intervals"] == 40 and not g.loc["strategy_time", "inside_window"]
    # 40 of 40 covered is unlikely under 90% coverage (0.9^40 = 0.015); 18 of 20 is the expected count
    assert g.loc["strategy_time", "p_binomial"] < 0.05 < g.loc["weibull_shape", "p_binomial"]
    # two groups tested: the smaller p doubles (Benjamini-Hochberg), the larger stays
    assert g.loc["strategy_time", "q_bh"] == pytest.approx(2 * g.loc["strategy_time", "p_binomial"])
    assert g.loc["weibull_shape", "q_bh"] == pytest.approx(g.loc["weibull_shape", "p_binomial"])
    # P(17, 18 or 19 of 20 covered | 0.9) = 0.745; P(34..38 of 40) = 0.820
    assert g.loc["weibull_shape", "p_window"] == pytest.approx(0.7455, abs=1e-3)
    assert g.loc["strategy_time", "p_window"] == pytest.approx(0.820, abs=1e-3)
