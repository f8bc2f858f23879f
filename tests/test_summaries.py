"""One interval definition, and the flag that says how far the data moved a number from its prior."""

from __future__ import annotations

import numpy as np
import pytest

from trt_recovery.summaries import contraction, evidence_flag, interval, summarise


def test_intervals_never_interpolate_across_infinity():
    draws = np.array([1.0, 2.0, 3.0, np.inf, np.inf, np.inf])
    med, lo, hi = interval(draws)
    assert np.isfinite(lo) and np.isinf(hi) and not np.isnan(med)
    s = summarise(np.linspace(0, 1, 1001))
    assert s["lower"] == pytest.approx(0.025, abs=1e-3) and s["upper"] == pytest.approx(0.975, abs=1e-3)


def test_contraction_and_flag_rule():
    rng = np.random.default_rng(0)
    prior = rng.normal(0, 1, 4000)
    assert evidence_flag(contraction(prior, rng.normal(0, 0.3, 4000))) == "data-informed"
    assert evidence_flag(contraction(prior, rng.normal(0, 0.85, 4000))) == "partly informed"
    assert evidence_flag(contraction(prior, rng.normal(0, 1.0, 4000))) == "mostly prior"
    assert evidence_flag(contraction(np.ones(10), np.ones(10))) == "not assessable"


def test_a_quantity_the_data_cannot_move_is_flagged_mostly_prior(mock_survival_fit):
    """A mocked fit's 'posterior' is its prior: every headline number must say so."""
    from helpers import hand_built
    from trt_recovery.survival.report import main_table

    table = main_table(mock_survival_fit)
    # prior and 'posterior' are two small sets of prior draws: contraction is noise around 0
    assert (table["contraction"].abs() < 0.35).all() and "data-informed" not in set(table["evidence_flag"])
    # pin every parameter: the posterior no longer varies, so the data 'fixed' the quantity
    fixed = hand_built(mock_survival_fit, {v: 0.0 for v in ("strategy_time", "strategy_cure", "population_time",
                                                             "population_cure", "study_time_sd", "study_cure_sd")}
                       | {"time_intercept": 1.0, "cure_intercept": -2.0, "weibull_shape": 1.5,
                          "threshold_time_total": 0.5, "threshold_cure_total": 0.2,
                          "threshold_time_step": 0.5, "threshold_cure_step": 0.2})
    row = main_table(fixed).set_index("strategy").loc["hcg_serm"]
    assert row["evidence_flag"] == "data-informed"
    assert row["posterior_sd_p_recovered_12m"] < 0.71 * row["prior_sd_p_recovered_12m"]


def test_a_strategy_without_rows_is_flagged_no_direct_evidence_whatever_its_contraction():
    rng = np.random.default_rng(1)
    prior, post = rng.normal(0, 1, 4000), rng.normal(0, 0.1, 4000)
    assert evidence_flag(contraction(prior, post)) == "data-informed"
    assert evidence_flag(contraction(prior, post), direct=False) == "no direct evidence"


def test_tables_for_people_have_words_for_headers_and_latex_captions(tmp_path):
    import pandas as pd

    from trt_recovery.tables import write_table

    df = pd.DataFrame({"strategy": ["hcg_serm"], "strategy_label": ["hCG + SERM"], "men": [66],
                       "pooled_rate_median": [0.71], "pooled_rate_lower95": [0.5], "p_recovered_12m": [0.8]})
    csv, md, tex = write_table(df, "demo_pooled", directory=tmp_path)
    assert pd.read_csv(csv).columns.tolist() == df.columns.tolist()  # machine names kept for code
    header = md.read_text().splitlines()[0]
    assert "hCG + SERM" in md.read_text() and "hcg_serm" not in md.read_text()  # the label replaces the code
    for words in ("Strategy", "Pooled rate (median)", "Pooled rate, lower 95%", "P(recovered by 12 months)"):
        assert words in header
    text = tex.read_text()
    assert "\\caption{Pooled estimates per strategy" in text and "\\label{tab:demo_pooled}" in text
