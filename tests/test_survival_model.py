"""Survival model: data preparation into likelihood terms, exclusions, build, prior predictive."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytest

from trt_recovery.config import DataSelection
from trt_recovery.harmonise import harmonise
from trt_recovery.models import REGISTRY, get_model
from trt_recovery.survival.families import get_family
from trt_recovery.survival.simulate import simulate_studies
from trt_recovery.validate import load_dataset

SPEC = get_model("survival_cure_weibull")


def test_every_family_registered_with_its_family_and_shape_prior():
    from trt_recovery.survival.families import FAMILIES

    for fam in FAMILIES.values():
        spec = REGISTRY[f"survival_cure_{fam.name}"]
        assert spec.family == fam.name and spec.default_priors["shape_median"] == fam.shape_prior[0]
        assert set(spec.prior_notes) == set(spec.default_priors)


def test_fixture_rows_become_terms_or_exclusions(data_dir):
    h = harmonise(load_dataset(data_dir))
    md = SPEC.prepare(h.outcomes, DataSelection())
    counts = md.terms["interval_count"]
    assert counts[["arm_id", "t1", "at_risk", "events"]].values.tolist() == [["kohn2017_all", 12.0, 66, 46]]
    means = md.terms["mean_time"]
    # Wenker's mean among recoverers takes its number of recoverers from the arm's count row
    assert means["size"].tolist() == [47.0] and means["value"].tolist() == [4.6]
    # a count without a follow-up time and a percentage without n enter the marginal term, with
    # the assumption they rest on written down
    marginal = md.terms["marginal_count"].set_index("outcome_id")
    assert set(marginal.index) == {"wenker2015_all_1", "samplaski2014_all_1"}
    assert (marginal.loc["wenker2015_all_1", ["n", "events"]] == [49, 47]).all()
    assert "follow-up time not reported" in marginal.loc["wenker2015_all_1", "assumption"]
    assert marginal.loc["samplaski2014_all_1", "time"] == 6.0 and np.isnan(marginal.loc["samplaski2014_all_1", "n"])
    assert "denominator not reported" in marginal.loc["samplaski2014_all_1", "assumption"]
    reasons = md.exclusions.set_index("outcome_id")["reason"]
    assert "not a time-to-recovery format" in reasons["wenker2015_all_3"]
    every = set(h.outcomes["outcome_id"])
    used = {o for t in md.terms.values() if len(t) for o in t["outcome_id"]}
    assert used | set(md.exclusions["outcome_id"]) == every


def test_cumulative_counts_become_successive_intervals():
    df, _ = simulate_studies(6, seed=4, formats=("cumulative",))
    md = SPEC.prepare(df, DataSelection())
    g = md.terms["interval_count"].query("arm_id == 'sim1000_a'")
    assert g["t0"].tolist() == [0.0, 3.0, 6.0]
    raw = df[df.arm_id == "sim1000_a"].sort_values("time_months")
    cum = raw["events"].astype(int).tolist()
    assert g["events"].tolist() == [cum[0], cum[1] - cum[0], cum[2] - cum[1]]
    assert g["at_risk"].tolist() == [raw.n.iloc[0], raw.n.iloc[0] - cum[0], raw.n.iloc[0] - cum[1]]


def test_median_with_iqr_adds_quartile_terms():
    df, _ = simulate_studies(5, seed=2, formats=("km_median",))
    row = df[df.outcome == "time_to_recovery"].index[0]
    v = df.loc[row, "value"]
    df.loc[row, ["dispersion_type", "lower", "upper"]] = ["iqr", v * 0.6, v * 1.5]
    md = SPEC.prepare(df, DataSelection())
    q = md.terms["quantile_time"]
    assert sorted(q[q.outcome_id == df.loc[row, "outcome_id"]]["p"]) == [0.25, 0.5, 0.75]


def test_a_median_without_its_number_of_men_enters_integrated_over_that_number():
    df, _ = simulate_studies(5, seed=2, formats=("km_median", "recoverer_median"))
    rows = df[(df.outcome == "time_to_recovery") & (df.statistic == "median")]
    over_all, among = rows[rows.over == "all"].index[0], rows[rows.over == "recoverers"].index[0]
    df.loc[over_all, "n"] = np.nan
    df.loc[over_all, "arm_n"] = pd.NA  # no arm size: bounded by the priors' unknown_n_max
    df.loc[among, "n"] = np.nan  # recoverers: bounded by the arm's men
    df = df[~((df.arm_id == df.loc[among, "arm_id"]) & df.outcome.isin(["recovered_count", "cumulative_proportion"]))]
    md = SPEC.prepare(df, DataSelection())
    q = md.terms["quantile_unknown_n"].set_index("outcome_id")
    assert {df.loc[over_all, "outcome_id"], df.loc[among, "outcome_id"]} <= set(q.index)
    assert np.isnan(q.loc[df.loc[over_all, "outcome_id"], "n_bound"])
    assert q.loc[df.loc[among, "outcome_id"], "n_bound"] == df.loc[among, "arm_n"]
    assert q["assumption"].str.contains("number of men behind the median not reported").all()
    model = SPEC.build(md, SPEC.default_priors)
    assert np.isfinite(model.compile_logp()(model.initial_point()))


def test_km_points_are_reconstructed_into_individual_times():
    rows = []
    for k, (t, p) in enumerate([(2, 0.2), (4, 0.45), (6, 0.6), (12, 0.8)], 1):
        rows.append(dict(outcome_id=f"km2000_a_{k}", arm_id="km2000_a", parent_arm_id=pd.NA, study_id="km2000",
                         population="trt", strategy="none", outcome="km_point", threshold="any", time_months=float(t),
                         n=pd.NA, events=pd.NA, proportion=p, arm_n=50, confidence="primary"))
    df = pd.DataFrame(rows)
    for c in ("serm_agent", "androgen_preparation", "baseline_sperm_status", "time_zero", "statistic", "over",
              "value_unit", "dispersion_type"):
        df[c] = pd.NA
    for c in ("androgen_duration_months", "age_years", "value", "dispersion_value", "lower", "upper", "n_azoospermic"):
        df[c] = np.nan
    md = SPEC.prepare(df, DataSelection())
    ind = md.terms["individual_time"]
    assert len(ind) == 50 and ind["event"].sum() == pytest.approx(40, abs=1)


def test_model_builds_and_prior_predictive_times_are_plausible():
    df, _ = simulate_studies(12, seed=3)
    md = SPEC.prepare(df, DataSelection())
    model = SPEC.build(md, SPEC.default_priors)
    assert np.isfinite(sum(model.point_logps().values()))
    # only levels with data are parameters: the simulated studies use three strategies and two populations
    assert model.coords["strategy"] == ("hcg_serm", "hcg_fsh") and model.coords["population"] == ("contraception",)
    assert not any(name.endswith("_unobserved") for name in model.named_vars)
    with model:
        prior = pm.sample_prior_predictive(draws=2000, random_seed=7, var_names=["time_intercept", "weibull_shape", "cure_intercept"])
    p = prior["prior"]
    mu = p["time_intercept"].values.ravel()
    k = p["weibull_shape"].values.ravel()
    median_months = get_family("weibull").quantile(0.5, mu, k)
    # the reference recovery time implied by the priors spans weeks to a few years, not seconds or centuries
    lo, hi = np.quantile(median_months, [0.05, 0.95])
    assert 0.2 < lo < 3 and 12 < hi < 120
    cure = 1 / (1 + np.exp(-p["cure_intercept"].values.ravel()))
    assert 0.01 < np.median(cure) < 0.3


def test_a_mean_without_sd_borrows_the_coefficient_of_variation_of_reported_means():
    from trt_recovery.models.survival_cure import impute_mean_sd

    t = pd.DataFrame({"outcome_id": ["a", "b", "c"], "value": [4.0, 10.0, 5.0], "sd_reported": [2.0, 8.0, 0.0],
                      "has_sd": [1, 1, 0]})
    out = impute_mean_sd(t)
    # CVs 0.5 and 0.8: median 0.65
    assert out.loc[2, "sd_reported"] == pytest.approx(0.65 * 5.0) and out.loc[2, "has_sd"] == 1
    assert "coefficient of variation 0.65 of a, b" in out.loc[2, "sd_source"]
    alone = impute_mean_sd(t.iloc[[2]].reset_index(drop=True))
    assert alone.loc[0, "has_sd"] == 0 and "prior median shape" in alone.loc[0, "sd_source"]
    from trt_recovery.models.survival_cure import fallback_cv
    from trt_recovery.survival.families import get_family

    # Weibull CV at shape 1.5: sqrt(G(1 + 2/k) - G(1 + 1/k)^2) / G(1 + 1/k)
    from scipy.special import gamma as G

    k = 1.5
    assert fallback_cv(get_family("weibull"), k) == pytest.approx(np.sqrt(G(1 + 2 / k) - G(1 + 1 / k) ** 2) / G(1 + 1 / k), rel=1e-6)


def test_a_study_is_anchored_by_its_most_precise_whole_curve_row():
    """Anchor candidates: medians over all men (precision: their men) and means over every man up to
    a horizon (precision: (value / se)^2 men). A study's most precise candidate anchors it if it
    reaches ``min_men``; quantiles among recoverers and other terms never anchor."""
    from trt_recovery.models import survival_cure as sc

    arms = pd.DataFrame({"study_id": ["a", "b", "b", "c", "d"]}, index=["a1", "b1", "b2", "c1", "d1"])
    quantiles = pd.DataFrame({
        "arm_id": ["a1", "b1", "c1", "d1"], "threshold": ["any", "20", "any", "any"], "value": [5.0, 7.0, 4.0, 6.0],
        "size": [150.0, 120.0, 99.0, 500.0], "over_all": [1, 1, 1, 0]})
    means = pd.DataFrame({"arm_id": ["b2", "c1"], "threshold": ["baseline", "20"], "value": [4.0, 3.0],
                          "se": [0.1, 0.31]})  # (4 / 0.1)^2 = 1600 men; (3 / 0.31)^2 = 94 men
    got = sc.anchor_rows({"quantile_time": quantiles, "restricted_mean": means}, arms, 100.0)
    assert got["study_id"].tolist() == ["a", "b"]  # c: 99 and 94 men; d: a median among recoverers
    assert got.set_index("study_id").loc["b", ["arm_id", "threshold", "value"]].tolist() == ["b2", "baseline", 4.0]
    assert got.set_index("study_id").loc["b", "men"] == pytest.approx(1600.0)
    assert sc.anchor_rows({"quantile_time": quantiles}, arms, 100.0)["arm_id"].tolist() == ["a1", "b1"]
    assert sc.anchor_rows({"restricted_mean": means}, arms, 90.0)["study_id"].tolist() == ["b", "c"]
    assert sc.anchor_rows({}, arms, 100.0).empty


def test_the_sampler_s_gradient_is_the_gradient_of_its_log_density():
    """nutpie compiles its own log-density and gradient (``compile_pymc_model``: PyTensor rewrites,
    then every parameter as a slice of one vector). Through that path a version of the anchored map
    (0571421, reverted: it read the anchored studies' non-recovery effects as ``z[positions]``) had a
    wrong gradient in those effects, while PyMC's own gradient and every log-density were right:
    NUTS then found no step size (below 1e-3), which looks like bad geometry. Simulated data did not
    show it, so this is the main analysis on the repository's data: the sampler's gradient against
    central finite differences of the sampler's log-density, at two of its jittered starting points."""
    from trt_recovery.config import load_config

    nutpie = pytest.importorskip("nutpie")
    cfg = load_config("survival")  # its priors are the model's defaults with the config's overrides
    spec = get_model(cfg.model)
    md = spec.prepare(harmonise(load_dataset()).outcomes, cfg.data)
    compiled = nutpie.compile_pymc_model(spec.build(md, cfg.priors))
    for seed in (1, 2):
        x = np.asarray(compiled.initial_point_func(seed), float)
        logp, grad = compiled.logp_func(x)
        h = 1e-6
        fd = np.array([(compiled.logp_func(x + h * e)[0] - compiled.logp_func(x - h * e)[0]) / (2 * h)
                       for e in np.eye(x.size)])
        assert np.isfinite(logp)
        assert np.allclose(grad, fd, rtol=1e-5, atol=1e-4)


def test_anchored_study_effects_change_coordinates_not_the_density():
    """NUTS samples an anchored study's time effect as the logit of the recoverers' curve at its
    median (``AnchoredStudyEffect``): the model's density in the effect must be unchanged. So the
    anchored log-density at u equals the plain one at z(u) plus log |dz/du|, here by finite
    differences of the map written in numpy, at prior draws far from any mode."""
    from trt_recovery.models import survival_cure as sc

    df, _ = simulate_studies(6, seed=5, formats=("km_median",))
    medians = df.outcome == "time_to_recovery"
    least = SPEC.default_priors["anchor_min_men"]
    df.loc[medians, ["n", "arm_n"]] = least - 1  # too few men: no study is anchored
    few = SPEC.prepare(df, DataSelection())
    assert sc.anchor_rows(few.terms, few.arms, least).empty
    df.loc[medians, ["n", "arm_n"]] = 150  # every median over all men of 150 men
    md = SPEC.prepare(df, DataSelection())
    anchors = sc.anchor_rows(md.terms, md.arms, least)
    assert len(anchors) == 6 and set(anchors["threshold"]) == {"any", "20"}
    anchored = SPEC.build(md, SPEC.default_priors)
    plain = SPEC.build(md, {**SPEC.default_priors, "anchor_min_men": 1e9}, predict=sc.OBSERVATIONS)
    assert anchored.rvs_to_values[anchored["study_time_z"]].name == "study_time_z_anchored__"
    assert plain.rvs_to_transforms[plain["study_time_z"]] is None
    free = [v.name for v in plain.free_RVs]
    with plain:
        prior = pm.sample_prior_predictive(draws=4, random_seed=11, var_names=[*free, "quantile_time_time_logscale"])
    p = prior["prior"]
    q = md.terms["quantile_time"]
    rows = [int(np.flatnonzero((q["arm_id"] == a).to_numpy() & (q["threshold"] == t).to_numpy())[0])
            for a, t in zip(anchors["arm_id"], anchors["threshold"])]
    at = [md.coords["study"].index(s) for s in anchors["study_id"]]
    times = anchors["value"].to_numpy(float)
    logp_plain, logp_anchored = plain.compile_logp(), anchored.compile_logp()
    fam = get_family("weibull")
    for d in range(4):
        values = {v: p[v].values[0, d] for v in free}
        point = {}
        for rv in plain.free_RVs:
            value, tr = plain.rvs_to_values[rv], plain.rvs_to_transforms[rv]
            point[value.name] = values[rv.name] if tr is None else tr.forward(values[rv.name], *rv.owner.inputs).eval()
        k, sd = values["weibull_shape"], values["study_time_sd"]
        mu = p["quantile_time_time_logscale"].values[0, d][rows]
        rest = mu - sd * values["study_time_z"][at]
        u = fam.log_cdf(times, mu, k) - fam.log_sf(times, mu, k)

        def effect(u):  # the map, in numpy
            return (fam.log_scale_at(times, u, k) - rest) / sd

        assert np.allclose(effect(u), values["study_time_z"][at])
        h = 1e-6
        log_jacobian = np.sum(np.log(np.abs((effect(u + h) - effect(u - h)) / (2 * h))))
        moved = {k_: x for k_, x in point.items() if k_ != "study_time_z"}
        moved["study_time_z_anchored__"] = point["study_time_z"].copy()
        moved["study_time_z_anchored__"][at] = u
        assert logp_anchored(moved) == pytest.approx(logp_plain(point) + log_jacobian, rel=1e-7)
