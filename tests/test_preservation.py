"""The preservation analysis (sperm kept during ongoing androgen) and the binomial models' shared
threshold treatment."""

from __future__ import annotations

import json

import numpy as np
import pymc as pm
import pytest

from trt_recovery.config import DataSelection
from trt_recovery.harmonise import harmonise
from trt_recovery.models import get_model
from trt_recovery.validate import load_dataset

DURING = ["continued_trt", "hcg_during_trt", "fsh_during_trt", "hcg_fsh_during_trt"]


@pytest.fixture(scope="module")
def repo_outcomes():
    return harmonise(load_dataset()).outcomes


def _selection():
    return DataSelection(populations=["trt", "aas", "mixed", "contraception"], strategies=DURING)


def test_prepare_uses_kept_sperm_counts_and_says_why_every_other_row_is_left_out(repo_outcomes):
    md = get_model("binomial_preservation").prepare(repo_outcomes, _selection())
    assert len(md.used) > 0
    assert set(md.used["outcome"]) <= {"preserved_count", "preserved_proportion"}
    assert md.used["arm_id"].is_unique  # one row per arm
    # a percentage with its derived denominator enters as a count; one without n is excluded, with the reason
    natesto = md.used[md.used.arm_id == "ramasamy2020_natesto"]
    assert len(natesto) == 1 and int(natesto.n.iloc[0]) == 43 and int(natesto.events.iloc[0]) == 38
    ex = md.exclusions.set_index("outcome_id")["reason"]
    assert ex["ramasamy2020_natesto_2"] == "no denominator (n) or count (events)"
    # every harmonised row is either used or excluded with a non-empty reason
    assert set(md.used.outcome_id) | set(ex.index) == set(repo_outcomes.outcome_id)
    assert (ex.str.len() > 0).all()


def test_the_other_analyses_point_to_the_preservation_analysis(repo_outcomes):
    for name, selection in (("binomial_success", DataSelection()), ("survival_cure_weibull", DataSelection())):
        ex = get_model(name).prepare(repo_outcomes, selection).exclusions.set_index("outcome_id")["reason"]
        assert "preservation analysis models it" in ex["hsieh2013_all_1"]


def test_threshold_ladder_never_raises_a_rate_and_free_thresholds_go_both_ways(repo_outcomes):
    spec = get_model("binomial_success")
    md = spec.prepare(repo_outcomes, DataSelection(populations=["trt", "aas", "mixed", "contraception"]))
    assert "20" in set(md.used.threshold) and "tmc5" in set(md.used.threshold)
    model = spec.build(md, spec.default_priors)
    with model:
        prior = pm.sample_prior_predictive(draws=400, random_seed=3,
                                           var_names=["arm_rate", "strategy_logit", "population_logit", "study_z",
                                                      "study_sd"])["prior"]
    used = md.used.reset_index(drop=True)

    def offset(i):
        r = used.iloc[i]
        base = prior["strategy_logit"].sel(strategy=r.strategy)
        if r.population != "trt":
            base = base + prior["population_logit"].sel(population_nonref=r.population)
        base = base + prior["study_sd"] * prior["study_z"].sel(study=r.study_id)
        rate = prior["arm_rate"].sel(arm=r.arm_id)
        return (np.log(rate / (1 - rate)) - base).values.ravel()

    for i, r in used.iterrows():
        d = offset(i)
        if r.threshold == "any":
            np.testing.assert_allclose(d, 0.0, atol=1e-6)
        elif r.threshold == "20":  # on the ladder: a drop, never a rise
            assert (d <= 1e-9).all() and (d < -0.1).mean() > 0.5
        else:  # off the ladder: a free shift
            assert (d > 0.1).mean() > 0.2 and (d < -0.1).mean() > 0.2


def test_contrasts_against_androgen_alone_are_the_difference_of_the_cell_rates(mock_preservation_fit):
    from trt_recovery.success import contrast_table

    fit = mock_preservation_fit
    con = contrast_table(fit, "continued_trt")
    assert len(con) and "continued_trt" not in set(con.strategy)
    post = fit.posterior["cell_rate"]
    r = con.iloc[0]
    diff = (post.sel(strategy=r.strategy, population=r.population)
            - post.sel(strategy="continued_trt", population=r.population)).values.ravel()
    assert r.difference_median == pytest.approx(float(np.median(diff)))
    assert r.p_better == pytest.approx(float((diff > 0).mean()))
    # the reference has a row only in trt: elsewhere the table says so
    assert set(con.loc[con.population != "trt", "reference_rows_in_population"]) == {0}
    assert contrast_table(fit, "strategy_without_data").empty


def test_cell_answer_says_what_it_rests_on_and_names_a_gap(mock_preservation_fit):
    from trt_recovery.success import cell_answer

    a = cell_answer(mock_preservation_fit, "hcg_during_trt", "trt")
    assert a["estimate"]["lower"] <= a["estimate"]["median"] <= a["estimate"]["upper"]
    assert a["evidence"] == ["hsieh2013: 26/26 (any, 6.2 mo)"]
    assert a["contrast"]["reference_rows_in_population"] == 1
    gap = cell_answer(mock_preservation_fit, "hcg_fsh_during_trt", "trt")
    assert gap["estimate"] is None and "evidence gap" in gap["gap"]
    json.dumps(a, default=float)  # the CLI's JSON output works


def test_cli_preserve_prints_the_estimate_the_rows_and_the_gap(mock_preservation_fit, capsys):
    from trt_recovery import cli

    path = str(mock_preservation_fit.path)
    assert cli.main(["preserve", "--analysis", path, "--strategy", "hcg_during_trt", "--population", "trt"]) == 0
    text = capsys.readouterr().out
    assert "hsieh2013: 26/26" in text and "vs continued_trt" in text and "95%" in text
    assert cli.main(["preserve", "--analysis", path, "--strategy", "hcg_fsh_during_trt"]) == 0
    assert "evidence gap" in capsys.readouterr().out
