"""The pregnancy analysis: a separate pooled binomial of pregnancy by the end of follow-up."""

from __future__ import annotations

import json

import numpy as np
import pymc as pm
import pytest

from trt_recovery.config import DataSelection
from trt_recovery.harmonise import harmonise
from trt_recovery.models import get_model
from trt_recovery.validate import load_dataset


@pytest.fixture(scope="module")
def repo_outcomes():
    return harmonise(load_dataset()).outcomes


def test_harmonise_keeps_pregnancy_rows_for_the_pregnancy_analysis(repo_outcomes):
    assert (repo_outcomes["outcome"] == "pregnancy").sum() >= 6


def test_prepare_uses_one_pregnancy_count_per_arm_and_says_why_every_other_row_is_left_out(repo_outcomes):
    md = get_model("binomial_pregnancy").prepare(repo_outcomes, DataSelection())
    assert len(md.used) >= 5 and set(md.used["outcome"]) == {"pregnancy"}
    assert md.used["arm_id"].is_unique and md.used["threshold"].isna().all()  # no sperm threshold
    ex = md.exclusions.set_index("outcome_id")["reason"]
    assert ex["who1996_all_1"] == "no denominator (n) or count (events)"  # couples trying not reported
    # the azoospermic and oligospermic subgroups would count the parent arm's men twice
    assert "subgroup" in ex["alhashimi2022_infertile_azoo_1"]
    parent = md.used.set_index("arm_id").loc["alhashimi2022_infertile"]
    assert (int(parent.n), int(parent.events)) == (94, 14)
    assert set(md.used.outcome_id) | set(ex.index) == set(repo_outcomes.outcome_id)
    assert (ex.str.len() > 0).all()


def test_the_model_has_no_threshold_parameter_and_rates_are_probabilities(repo_outcomes):
    spec = get_model("binomial_pregnancy")
    md = spec.prepare(repo_outcomes, DataSelection())
    model = spec.build(md, spec.default_priors)
    assert not [v.name for v in model.free_RVs if v.name.startswith("threshold")]
    assert not {"threshold_total_scale", "threshold_free_sd"} & set(spec.default_priors)
    with model:
        prior = pm.sample_prior_predictive(draws=200, random_seed=1, var_names=["arm_rate"])["prior"]
    rate = prior["arm_rate"].values
    assert np.all((rate > 0) & (rate < 1)) and rate.shape[-1] == len(md.used)


def test_report_and_cli_answer_with_the_rows_behind_it(mock_pregnancy_fit, capsys):
    from trt_recovery import cli
    from trt_recovery.success import cell_answer, pooled_table

    fit = mock_pregnancy_fit
    a = cell_answer(fit, "hcg_fsh", "hh", kind="pregnancy")
    assert a["estimate"]["lower"] <= a["estimate"]["median"] <= a["estimate"]["upper"]
    assert "ortac2019: 48/72 (end of follow-up)" in a["evidence"]  # no threshold printed: a pregnancy has none
    json.dumps(a, default=float)
    table = pooled_table(fit, count="pregnancies")
    assert {"hcg_fsh", "mixed_treatments"} <= set(table["strategy"])
    assert cli.main(["pregnancy", "--analysis", str(fit.path), "--strategy", "hcg_fsh", "--population", "hh"]) == 0
    text = capsys.readouterr().out
    assert "P(pregnancy by the end of follow-up" in text and "ortac2019: 48/72" in text
    assert cli.main(["pregnancy", "--analysis", str(fit.path), "--strategy", "gonadorelin", "--population", "trt"]) == 0
    assert "evidence gap" in capsys.readouterr().out


def test_summary_of_findings_rates_pregnancy_as_indirect_where_it_rests_on_hh(mock_pregnancy_fit):
    from trt_recovery.certainty import summary_of_findings

    sof = summary_of_findings({"pregnancy": mock_pregnancy_fit})
    assert set(sof["outcome"]) == {"pregnancies"}
    # no trt arm: no population shift to reach TRT patients, so no row for them (said, not guessed)
    assert set(sof["target_population"]) == {"aas"}
    assert any("pregnancies for trt" in note for note in sof.attrs["skipped"])
    rows = sof.set_index("strategy")
    assert rows.loc["hcg_fsh", "indirectness"] == "very serious"  # hypogonadotropic men only
    assert rows.loc["mixed_treatments", "indirectness"] == "not serious"  # steroid users, the target itself
    assert "recovery defined above" not in rows.loc["hcg_fsh", "reasons"]  # a pregnancy has no threshold
