"""GRADE-style certainty: each domain moves the rating as the rules file says."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from trt_recovery.certainty import load_rules, rate, summary_of_findings


def _rows(*arms):
    """arms: (study_id, design, population, threshold, n)."""
    return pd.DataFrame([{"arm_id": f"{s}_{i}", "study_id": s, "design": d, "population": p, "threshold": t,
                          "arm_n": n} for i, (s, d, p, t, n) in enumerate(arms)])


NARROW = (0.7, 0.62, 0.78)  # spans neither decision threshold (0.5, 0.8)


def test_one_direct_trial_with_a_precise_data_informed_estimate_stays_high():
    r = rate(_rows(("a", "rct", "trt", "any", 120)), "trt", NARROW, (0.6, 0.8), "data-informed", "probability")
    assert r["certainty"] == "high" and r["downgrades"] == 0
    assert r["inconsistency"].startswith("not assessable") and r["reasons"] == ""


def test_case_reports_alone_are_very_serious_risk_of_bias_and_suspected_publication_bias():
    r = rate(_rows(("a", "case_report", "trt", "any", 1), ("b", "case_report", "trt", "any", 2)), "trt",
             NARROW, (0.3, 0.95), "data-informed", "probability")
    assert r["risk_of_bias"] == "very serious" and r["publication_bias"] == "suspected"
    assert r["certainty"] == "very low"


def test_contraception_trials_are_indirect_for_trt_but_a_threshold_above_any_is_also_indirect():
    r = rate(_rows(("a", "rct", "contraception", "any", 200)), "trt", NARROW, (0.6, 0.8), "data-informed", "probability")
    assert r["indirectness"] == "serious" and r["certainty"] == "moderate"
    r = rate(_rows(("a", "rct", "trt", "20", 200)), "trt", NARROW, (0.6, 0.8), "data-informed", "probability")
    assert r["indirectness"] == "serious" and "above 'any sperm'" in r["reasons"]
    r = rate(_rows(("a", "rct", "hh", "any", 200)), "trt", NARROW, (0.6, 0.8), "data-informed", "probability")
    assert r["indirectness"] == "very serious"


def test_men_weighting_decides_risk_of_bias():
    big_trial = _rows(("a", "rct", "trt", "any", 300), ("b", "case_series", "trt", "any", 20))
    assert rate(big_trial, "trt", NARROW, (0.55, 0.79), "data-informed", "probability")["risk_of_bias"] == "not serious"
    big_series = _rows(("a", "rct", "trt", "any", 20), ("b", "case_series", "trt", "any", 300))
    assert rate(big_series, "trt", NARROW, (0.55, 0.79), "data-informed", "probability")["risk_of_bias"] == "serious"


def test_imprecision_counts_decision_thresholds_and_a_prior_restatement_is_very_imprecise():
    rows = _rows(("a", "rct", "trt", "any", 100))
    assert rate(rows, "trt", (0.6, 0.45, 0.75), (0.4, 0.8), "data-informed", "probability")["imprecision"] == "serious"
    assert rate(rows, "trt", (0.6, 0.3, 0.9), (0.2, 0.95), "data-informed", "probability")["imprecision"] == "very serious"
    r = rate(rows, "trt", NARROW, (0.6, 0.8), "mostly prior", "probability")
    assert r["imprecision"] == "very serious" and "did not move" in r["reasons"]
    # concentration thresholds (million/mL) apply on that scale
    assert rate(rows, "trt", (10, 4, 20), (3, 30), "data-informed", "concentration")["imprecision"] == "very serious"


def test_inconsistency_from_the_share_of_the_prediction_interval_due_to_between_study_spread():
    rows = _rows(("a", "rct", "trt", "any", 100), ("b", "rct", "trt", "any", 100))
    # average-study width 0.16 of a prediction width 0.2: spread explains 20%: not serious
    assert rate(rows, "trt", NARROW, (0.6, 0.8), "data-informed", "probability")["inconsistency"] == "not serious"
    # 0.16 of 0.4: 60%: serious; 0.16 of 0.9: 82%: very serious
    assert rate(rows, "trt", NARROW, (0.45, 0.85), "data-informed", "probability")["inconsistency"] == "serious"
    assert rate(rows, "trt", NARROW, (0.05, 0.95), "data-informed", "probability")["inconsistency"] == "very serious"


def test_rules_file_is_checked(tmp_path):
    bad = tmp_path / "rules.yaml"
    from trt_recovery import paths

    raw = yaml.safe_load(paths.CERTAINTY_RULES.read_text(encoding="utf-8"))
    raw["start"] = "excellent"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="start 'excellent'"):
        load_rules(bad)
    del raw["imprecision"]
    raw["start"] = "high"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="imprecision"):
        load_rules(bad)


def test_summary_of_findings_from_a_fit(mock_success_fit):
    sof = summary_of_findings({"success_rate": mock_success_fit})
    levels = load_rules().levels
    assert set(sof["certainty"]) <= set(levels) and len(sof)
    # one row per strategy with data and target population; trt (target) before aas
    assert set(sof["strategy"]) == set(mock_success_fit.used["strategy"])
    assert list(dict.fromkeys(sof["target_population"])) == [p for p in load_rules().target_populations
                                                           if p in set(sof["target_population"])]
    assert (sof["lower95"] <= sof["estimate"]).all() and (sof["estimate"] <= sof["upper95"]).all()


def test_arm_weights_fill_an_unknown_arm_size_with_the_median_of_the_others():
    import pandas as pd

    from trt_recovery.certainty import _weights

    arms = pd.DataFrame({"arm_n": pd.array([12, 15, pd.NA], dtype="Int64")})
    assert _weights(arms).tolist() == [12.0, 15.0, 13.5]
