"""Leave-one-study-out: every contributing study is dropped once, and only that study."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import synthetic_tables
from trt_recovery import loso
from trt_recovery.config import parse_config
from trt_recovery.fitting import fit_analysis
from trt_recovery.harmonise import harmonise
from trt_recovery.validate import load_dataset

# the last arm is the only evidence for hcg_fsh: without it, that strategy is not estimable
ARMS = [{"strategy": "hcg_serm", "n": 60, "p": 0.8}, {"strategy": "hcg_serm", "n": 40, "p": 0.7},
        {"strategy": "none", "n": 50, "p": 0.5}, {"strategy": "none", "n": 30, "p": 0.6},
        {"strategy": "hcg_fsh", "n": 40, "p": 0.95}]
def _cfg(**checks):
    raw = {"name": "tiny", "model": "binomial_success",
           "sampler": {"seed": 7, "draws": 100, "tune": 0, "chains": 2, "target_accept": 0.95},
           "checks": checks or {"ess_bulk_min": 10, "rhat_max": 1.5}}
    return parse_config(raw, "tiny.yaml")


@pytest.fixture
def setup(tmp_path_factory, mocked_sampler):
    """Refits draw from the prior (a mocked sampler): these tests check the bookkeeping only."""
    d = tmp_path_factory.mktemp("loso") / "data"
    synthetic_tables(d, ARMS, seed=3)
    outcomes = harmonise(load_dataset(d)).outcomes
    full = fit_analysis(_cfg(), harmonised_outcomes=outcomes, save=False)
    return outcomes, full


def test_each_study_dropped_once_with_every_quantity(setup):
    outcomes, full = setup
    table = loso.leave_one_study_out(_cfg(), outcomes=outcomes, full=full, scheduler="inprocess")
    studies = sorted(outcomes["study_id"].unique())
    assert sorted(table["dropped_study"].unique()) == studies
    quantities = {f"pooled_rate[{s},trt]" for s in ("hcg_serm", "none", "hcg_fsh")}
    for _, g in table.groupby("dropped_study"):
        assert set(g["quantity"]) == quantities
    full_fsh = float(np.median(full.posterior["cell_rate"].sel(strategy="hcg_fsh", population="trt")))
    assert np.allclose(table.loc[table["quantity"] == "pooled_rate[hcg_fsh,trt]", "full_median"], full_fsh)
    # dropping the only hcg_fsh study leaves that strategy without data: empty, with the reason
    fsh_study = outcomes.loc[outcomes["arm_id"].str.startswith("synth2004"), "study_id"].iloc[0]
    gone = table[(table["dropped_study"] == fsh_study) & (table["quantity"] == "pooled_rate[hcg_fsh,trt]")].iloc[0]
    assert np.isnan(gone["loso_median"]) and "not estimable" in gone["note"]
    # dropping a 'none' study moves the pooled 'none' rate, and the interval brackets the median
    kept = table.dropna(subset=["loso_median"])
    assert (kept["loso_lower95"] <= kept["loso_median"]).all() and (kept["loso_median"] <= kept["loso_upper95"]).all()
    assert np.allclose(kept["shift"], kept["loso_median"] - kept["full_median"])


def test_failed_refits_are_flagged_not_hidden(setup, tmp_path):
    outcomes, full = setup
    table = loso.leave_one_study_out(_cfg(ess_bulk_min=10**6), outcomes=outcomes, full=full, scheduler="inprocess")
    assert not table["checks_passed"].any()
    assert table["note"].str.contains("FAILED its convergence checks").all()
    assert table["checks"].str.contains(r"ess_bulk_min .* \(FAIL\)").all()
    files = loso.write_table("tiny", table, tmp_path)
    assert [p.suffix for p in files] == [".csv", ".md", ".tex"]
    assert "FAILED" in files[1].read_text()


def test_divergence_only_failure_is_retried_once_at_higher_target_accept(setup, monkeypatch):
    """A refit failing only through divergences is rerun once at RETRY_TARGET_ACCEPT, and said so."""
    outcomes, full = setup
    calls = []
    real = loso.fit_analysis
    studies = loso.contributing_studies(full)

    def fake(config, **kw):
        dropped = (set(outcomes["study_id"]) - set(kw["harmonised_outcomes"]["study_id"])).pop()
        ta = (kw.get("sampler_overrides") or {}).get("target_accept")
        calls.append((dropped, ta))
        res = real(config, **kw)
        if dropped == studies[0] and ta is None:  # the first study's refit 'diverges'
            conv = json.loads(res.tree["provenance"].attrs["convergence"])
            for c in conv["checks"]:
                if c["check"] == "divergences":
                    c.update(value=3, passed=False)
            conv.update(divergences=3, passed=False)
            res.tree["provenance"].attrs["convergence"] = json.dumps(conv)
            res.__dict__.pop("convergence", None)
        return res

    monkeypatch.setattr(loso, "fit_analysis", fake)
    table = loso.leave_one_study_out(_cfg(), outcomes=outcomes, full=full, scheduler="inprocess")
    assert [ta for s, ta in calls if s == studies[0]] == [None, loso.RETRY_TARGET_ACCEPT]
    assert all(ta is None for s, ta in calls if s != studies[0])
    first = table[table["dropped_study"] == studies[0]]
    assert first["sampler_note"].str.contains("3 divergence\\(s\\) at target_accept 0.95; refitted once at 0.999").all()
    assert first["checks_passed"].all()
    assert (table[table["dropped_study"] != studies[0]]["sampler_note"] == "").all()


def test_attribution_refits_without_each_study_behind_added_or_changed_rows(tmp_path, mocked_sampler):
    from trt_recovery import review

    d = tmp_path / "data"
    synthetic_tables(d, ARMS, seed=3)
    outcomes = harmonise(load_dataset(d)).outcomes
    path = tmp_path / "tiny.nc"
    full = fit_analysis(_cfg(), harmonised_outcomes=outcomes, path=path)
    new_study = outcomes.loc[outcomes["arm_id"].str.startswith("synth2004"), "study_id"].iloc[0]
    added = outcomes.loc[outcomes["study_id"] == new_study, "outcome_id"].tolist()
    evidence = {"added": added, "removed": ["an_old_row_1"], "changed": []}
    table = review.attribute("tiny", evidence, posterior=path, outcomes=outcomes, config=_cfg(), scheduler="inprocess")
    assert set(table["study"]) == {new_study} and table["rows"].iloc[0] == ", ".join(added)
    assert len(table) == len(full.spec.headline(full))
    known = table.dropna(subset=["without_study"])
    assert np.allclose(known["contribution"], known["now"] - known["without_study"])
    # the new study was the only hcg_fsh evidence: without it that number does not exist
    fsh = table[table["quantity"].str.contains("hcg_fsh")].iloc[0]
    assert np.isnan(fsh["without_study"]) and "not estimable" in fsh["note"]
    text = review.describe("tiny", review.diff("tiny", posterior=path, reference=_reference(tmp_path, path))[0],
                           evidence, table)
    assert "Which study is behind it" in text and new_study in text
    empty = review.attribute("tiny", {"added": [], "removed": [], "changed": []}, posterior=path, outcomes=outcomes,
                             config=_cfg(), scheduler="inprocess")
    assert empty.empty
    assert "no study has rows added or changed" in review.describe("tiny", review.diff(
        "tiny", posterior=path, reference=_reference(tmp_path, path))[0], evidence, empty)


def _reference(tmp_path, path):
    from trt_recovery import verify as V

    return V.write_reference("tiny", posterior=path, target=tmp_path / "ref.json")
