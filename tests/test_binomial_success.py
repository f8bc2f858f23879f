"""The binomial success model: data preparation, prior predictive, and a seeded recovery fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytest

from helpers import read, synthetic_tables, write
from trt_recovery.config import DataSelection, parse_config
from trt_recovery.fitting import fit_analysis
from trt_recovery.harmonise import harmonise
from trt_recovery.models import REGISTRY, get_model
from trt_recovery.validate import load_dataset

SPEC = get_model("binomial_success")


def test_registered_by_name():
    assert REGISTRY["binomial_success"] is SPEC
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        get_model("nope")


def test_prepare_uses_one_count_per_arm_and_reports_every_other_row(data_dir):
    h = harmonise(load_dataset(data_dir))
    md = SPEC.prepare(h.outcomes, DataSelection())
    assert sorted(md.used["arm_id"]) == ["kohn2017_all", "wenker2015_all"]
    reasons = md.exclusions.set_index("outcome_id")["reason"]
    assert "not a recovery count" in reasons["wenker2015_all_2"]
    assert "not a recovery count" in reasons["wenker2015_all_3"]
    assert set(md.used["outcome_id"]) | set(md.exclusions["outcome_id"]) == set(h.outcomes["outcome_id"])


def test_selection_exclusions_have_reasons(data_dir):
    h = harmonise(load_dataset(data_dir))
    md = SPEC.prepare(h.outcomes, DataSelection(strategies=("hcg_serm",)))
    assert md.used["arm_id"].tolist() == ["kohn2017_all"]
    assert "strategy 'hcg_combination' not in this analysis" in set(md.exclusions["reason"])


def test_subgroup_rows_not_used_when_parent_is(data_dir):
    arms = read(data_dir, "arms")
    sub = arms[arms["arm_id"] == "kohn2017_all"].copy()
    sub["arm_id"], sub["parent_arm_id"], sub["n"] = "kohn2017_azoo", "kohn2017_all", "40"
    write(data_dir, "arms", pd.concat([arms, sub]))
    out = read(data_dir, "outcomes")
    row = out[out["outcome_id"] == "kohn2017_all_1"].copy()
    row["outcome_id"], row["arm_id"], row["n"], row["events"] = "kohn2017_azoo_1", "kohn2017_azoo", "40", "25"
    write(data_dir, "outcomes", pd.concat([out, row]))
    md = SPEC.prepare(harmonise(load_dataset(data_dir)).outcomes, DataSelection())
    assert "kohn2017_azoo" not in set(md.used["arm_id"])
    assert "subgroup of arm kohn2017_all" in md.exclusions.set_index("outcome_id").loc["kohn2017_azoo_1", "reason"]


def test_model_builds_and_prior_predictive_is_finite(data_dir):
    md = SPEC.prepare(harmonise(load_dataset(data_dir)).outcomes, DataSelection())
    model = SPEC.build(md, SPEC.default_priors)
    assert set(model.named_vars) >= {"strategy_logit", "study_sd", "study_z", "n_recovered", "pooled_rate"}
    # a new study's effect is a prediction variable, drawn after sampling, never sampled by NUTS
    assert "new_study_z" not in model.named_vars
    assert {"new_study_z", "cell_predicted_rate"} <= set(SPEC.build(md, SPEC.default_priors, predict=True).named_vars)
    with model:
        prior = pm.sample_prior_predictive(draws=500, random_seed=11, var_names=["pooled_rate"])
    rate = prior["prior"]["pooled_rate"].values
    # weakly informative: the prior puts real mass on both low and high recovery rates
    assert 0.05 < (rate < 0.2).mean() < 0.3 and 0.05 < (rate > 0.8).mean() < 0.3
    assert np.isfinite(model.compile_logp()(model.initial_point()))


def test_threshold_rank_follows_the_schema_ladder():
    from trt_recovery.models.binomial_success import threshold_rank
    from trt_recovery.schema import load_schema

    ladder = load_schema().threshold_ladder
    assert [threshold_rank(t) for t in ladder] == list(range(len(ladder)))
    assert threshold_rank("tmc5") >= len(ladder) and threshold_rank("improvement") >= len(ladder)


def test_pooled_table_new_study_is_wider_and_seeded(mock_success_fit):
    from trt_recovery.success import pooled_table

    a = pooled_table(mock_success_fit, seed=1)
    assert (a["prediction_upper95"] - a["prediction_lower95"] >= a["pooled_rate_upper95"] - a["pooled_rate_lower95"]).all()
    pd.testing.assert_frame_equal(a, pooled_table(mock_success_fit, seed=1))


@pytest.mark.sampling
def test_short_seeded_fit_recovers_known_rates(tmp_path):
    truth = {"hcg_serm": 0.85, "none": 0.45}
    arms = [{"strategy": s, "n": 150, "p": p} for s, p in truth.items() for _ in range(4)]
    synthetic_tables(tmp_path / "data", arms, seed=3)
    cfg = parse_config(
        {"name": "synthetic", "model": "binomial_success", "priors": {"study_sd_scale": 0.5},
         "sampler": {"seed": 5, "draws": 500, "tune": 500, "chains": 2, "cores": 1, "target_accept": 0.95}},
        "synthetic.yaml",
    )
    res = fit_analysis(cfg, dataset=load_dataset(tmp_path / "data"), save=False, raise_on_failure=False)
    post = res.posterior["pooled_rate"]
    for s, p in truth.items():
        draws = post.sel(strategy=s).values.ravel()
        lo, hi = np.quantile(draws, [0.05, 0.95])
        assert lo < p < hi, f"{s}: true {p} outside 90% interval ({lo:.3f}, {hi:.3f})"
        assert hi - lo < 0.3


def test_every_fit_gets_a_parameter_summary_and_rank_plots(mock_success_fit):
    import matplotlib.pyplot as plt

    from trt_recovery.report import RANK_PANELS, parameter_summary, rank_figure

    s = parameter_summary(mock_success_fit)
    # the parameters with a prior of their own, not the standardised study effects
    assert {"study_sd", "strategy_logit[none]", "strategy_logit[hcg_serm]"} <= set(s["parameter"])
    assert not s["parameter"].str.startswith("study_z").any()
    assert {"estimate", "est_error", "lower95", "upper95", "rhat", "ess_bulk", "ess_tail", "converged"} <= set(s.columns)
    assert (s["lower95"] <= s["estimate"]).all() and (s["estimate"] <= s["upper95"]).all()
    fig = rank_figure(mock_success_fit, s)
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert 0 < len(titled) <= RANK_PANELS
    assert set(titled) <= set(s["parameter"])
    plt.close(fig)
