"""Sensitivity tables across fits: failed or missing fits are listed, copies of the main fit labelled."""

from __future__ import annotations


def test_across_fits_lists_missing_fits_and_labels_a_fit_that_changes_nothing(mock_survival_fit):
    from trt_recovery.survival.sensitivity import headline_across, pnever_check

    p = str(mock_survival_fit.path)
    across = headline_across({"missing first": "no_such_fit", "main": p, "same again": p})
    missing = across[across["fit"] == "missing first"]
    assert len(missing) == 1 and missing["strategy"].isna().all() and "no result" in missing["note"].iloc[0]
    assert (across.loc[across["fit"] == "main", "note"] == "").all()
    assert across.loc[across["fit"] == "same again", "note"].str.contains("changes nothing").all()
    pn = pnever_check({"gone": "no_such_fit"})
    assert list(pn.columns)[:2] == ["fit", "strategy"] and "posterior_median" in pn and pn["strategy"].isna().all()
