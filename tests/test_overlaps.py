"""The same men never enter a model twice: subgroups, mixed-strategy parents, and cohorts in two studies."""

from __future__ import annotations

import pandas as pd

from trt_recovery.models.base import resolve_overlaps


def _rows(*rows):
    cols = ["outcome_id", "arm_id", "study_id", "parent_arm_id", "overlaps_arm_id", "strategy"]
    return pd.DataFrame([dict(zip(cols, r, strict=True)) for r in rows], columns=cols)


def test_parent_used_and_same_strategy_subgroups_excluded():
    df = _rows(("p_1", "p", "s", None, None, "hcg_serm"), ("c_1", "c", "s", "p", None, "hcg_serm"))
    kept, excl = resolve_overlaps(df)
    assert kept["outcome_id"].tolist() == ["p_1"]
    assert "subgroup of arm p" in excl[0]["reason"]


def test_subgroups_with_their_own_strategy_replace_a_mixed_parent():
    """Kolettis 2015: treated and untreated men reported together, and apart."""
    df = _rows(("all_1", "all", "k", None, None, "mixed_treatments"),
               ("tr_1", "tr", "k", "all", None, "mixed_treatments"),
               ("un_1", "un", "k", "all", None, "none"))
    kept, excl = resolve_overlaps(df)
    assert sorted(kept["outcome_id"]) == ["tr_1", "un_1"]
    assert "mixes strategies" in excl[0]["reason"] and excl[0]["outcome_id"] == "all_1"


def test_cohort_reported_in_two_studies_counts_once():
    df = _rows(("who_1", "who", "who1996", None, None, "none"), ("thai_1", "thai", "thai1996", None, "who", "none"))
    kept, excl = resolve_overlaps(df)
    assert kept["outcome_id"].tolist() == ["who_1"] and "same men as arm who" in excl[0]["reason"]
    # when the larger arm has no usable row, the smaller report is used
    kept, excl = resolve_overlaps(df[df["arm_id"] == "thai"])
    assert kept["outcome_id"].tolist() == ["thai_1"] and not excl


def test_a_row_left_out_by_the_selection_names_the_analysis_that_models_it():
    from trt_recovery.config import DataSelection
    from trt_recovery.models.base import select_rows

    df = pd.DataFrame({"outcome_id": ["p1", "c1", "k1"], "arm_id": ["a", "a", "a"], "study_id": ["s"] * 3,
                       "outcome": ["pregnancy", "concentration", "recovered_count"], "threshold": [pd.NA, pd.NA, "1"],
                       "population": ["trt"] * 3, "strategy": ["none"] * 3, "confidence": ["primary"] * 3})
    selection = DataSelection(thresholds=("any",))
    _, excluded = select_rows(df, selection)
    reasons = {e["outcome_id"]: e["reason"] for e in excluded}
    assert reasons["p1"].endswith("the pregnancy analysis models it, see the docstring of binomial_pregnancy)")
    assert "the concentration analysis models it" in reasons["c1"]
    assert reasons["k1"] == "threshold '1' not in this analysis"
    # the model of that outcome itself does not send its own rows elsewhere
    _, own = select_rows(df, selection, own=("pregnancy",))
    assert {e["outcome_id"]: e["reason"] for e in own}["p1"] == "no threshold (this analysis selects its rows by threshold)"
