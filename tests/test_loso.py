"""Leave-one-study-out: every contributing study is dropped once, and only that study."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from helpers import mock_sample, synthetic_tables
from trt_recovery import loso
from trt_recovery.config import parse_config
from trt_recovery.fitting import fit_analysis
from trt_recovery.harmonise import harmonise
from trt_recovery.summaries import weighted_interval
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


@pytest.fixture(scope="module")
def _full_fit(tmp_path_factory):
    """The full-data fit, once per module (prior draws for a posterior; read, never changed, by the tests)."""
    import pytensor

    from trt_recovery import fitting

    d = tmp_path_factory.mktemp("loso") / "data"
    synthetic_tables(d, ARMS, seed=3)
    outcomes = harmonise(load_dataset(d)).outcomes
    with pytest.MonkeyPatch.context() as mp, pytensor.config.change_flags(mode="FAST_COMPILE"):
        mp.setattr(fitting, "sample", mock_sample)
        full = fit_analysis(_cfg(), harmonised_outcomes=outcomes, save=False)
    return outcomes, full


@pytest.fixture
def setup(_full_fit, mocked_sampler):
    """Refits draw from the prior (a mocked sampler): these tests check the bookkeeping only."""
    return _full_fit


def test_each_study_dropped_once_with_every_quantity(setup):
    outcomes, full = setup
    table = loso.leave_one_study_out(_cfg(), outcomes=outcomes, full=full, scheduler="inprocess", method="refit")
    studies = sorted(outcomes["study_id"].unique())
    assert sorted(table["dropped_study"].unique()) == studies
    assert (table["method"] == "refit").all() and table["pareto_k"].isna().all()  # method="refit": no PSIS
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
    table = loso.leave_one_study_out(_cfg(ess_bulk_min=10**6), outcomes=outcomes, full=full, scheduler="inprocess",
                                     method="refit")
    assert not table["checks_passed"].any()
    assert table["note"].str.contains("FAILED its convergence checks").all()
    assert table["checks"].str.contains(r"ess_bulk_min .* \(FAIL\)").all()
    files = loso.write_table("tiny", table, tmp_path)
    assert [p.suffix for p in files] == [".csv", ".md", ".tex"]
    assert "FAILED" in files[1].read_text()


def test_a_refit_that_raises_is_reported_not_lost(setup, monkeypatch):
    """A refit that raises keeps its rows, with the error, and fails the checks."""
    outcomes, full = setup
    first = loso.contributing_studies(full)[0]
    real = loso.fit_analysis

    def boom(config, **kw):
        if first not in set(kw["harmonised_outcomes"]["study_id"]):
            raise ValueError("no arm left to fit")
        return real(config, **kw)

    monkeypatch.setattr(loso, "fit_analysis", boom)
    table = loso.leave_one_study_out(_cfg(), outcomes=outcomes, full=full, scheduler="inprocess", method="refit")
    gone = table[table["dropped_study"] == first]
    assert len(gone) == len(full.spec.headline(full)) and gone["loso_median"].isna().all()
    assert (~gone["checks_passed"]).all() and gone["checks"].str.contains("refit raised: .*no arm left to fit").all()
    assert table.loc[table["dropped_study"] != first, "checks_passed"].all()


def test_the_only_study_of_an_analysis_leaves_nothing_to_estimate(tmp_path, mocked_sampler):
    d = tmp_path / "data"
    synthetic_tables(d, ARMS[:1], seed=3)
    outcomes = harmonise(load_dataset(d)).outcomes
    full = fit_analysis(_cfg(), harmonised_outcomes=outcomes, save=False)
    table = loso.leave_one_study_out(_cfg(), outcomes=outcomes, full=full, scheduler="inprocess")
    assert len(table) == len(full.spec.headline(full)) == 1
    row = table.iloc[0]
    assert row["method"] == "none (the analysis's only study)" and row["checks_passed"]
    assert np.isnan(row["loso_median"]) and "not estimable" in row["note"]


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
    table = loso.leave_one_study_out(_cfg(), outcomes=outcomes, full=full, scheduler="inprocess", method="refit")
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


# ------------------------------------------------------------------------------------------------
# Importance sampling (PSIS) of the saved posterior


def _beta_binomial_posterior(studies, draws=2000, chains=4, seed=11):
    """Exact draws of a rate under a Beta(1, 1) prior given every study's r of n, and each study's
    binomial log-likelihood at every draw: the leave-one-out posteriors are Beta too."""
    from scipy import stats

    r_all, n_all = sum(r for r, _ in studies), sum(n for _, n in studies)
    theta = stats.beta(1 + r_all, 1 + n_all - r_all).rvs(size=(chains, draws), random_state=seed)
    post = xr.Dataset({"rate": (("chain", "draw"), theta)})
    ll = np.stack([stats.binom.logpmf(r, n, theta) for r, n in studies], axis=-1)
    log_lik = xr.DataArray(ll, dims=("chain", "draw", "dropped_study"),
                           coords={"dropped_study": [f"s{i}" for i in range(len(studies))]})
    return post, log_lik, theta


def test_psis_reproduces_the_exact_leave_one_study_out_posterior():
    """Conjugate case: PSIS-weighted quantiles of the full draws match the Beta posterior without
    the study; a study that dominates the data gets a Pareto k above the threshold."""
    from scipy import stats

    studies = [(12, 20), (30, 50), (7, 15), (20, 30), (400, 1000)]
    post, log_lik, theta = _beta_binomial_posterior(studies)
    log_w, khat = loso.psis_weights(post, log_lik)
    r_all, n_all = sum(r for r, _ in studies), sum(n for _, n in studies)
    k_max = loso.pareto_k_max(theta.size)
    assert k_max == 0.7
    for i, (r, n) in enumerate(studies[:4]):
        assert float(khat.isel(dropped_study=i)) < k_max
        lw = log_w.isel(dropped_study=i).transpose("chain", "draw").values.reshape(-1)
        med, lo, hi = weighted_interval(theta.reshape(-1), lw)
        exact = stats.beta(1 + r_all - r, 1 + (n_all - n) - (r_all - r)).ppf([0.5, 0.025, 0.975])
        assert np.allclose([med, lo, hi], exact, atol=0.004), (i, [med, lo, hi], exact)
    # without the 1000-man study the posterior moves far outside the draws: PSIS cannot be trusted
    assert float(khat.isel(dropped_study=4)) > k_max


def test_study_log_likelihood_sums_every_observation_by_study_and_refuses_strays(setup):
    outcomes, full = setup
    total = loso.study_log_likelihood(full)
    assert total.dims == ("chain", "draw", "dropped_study")
    ll = full.tree["log_likelihood"].to_dataset()["n_recovered"]
    arm_study = dict(zip(full.used["arm_id"], full.used["study_id"], strict=True))
    for study in loso.contributing_studies(full):
        arms = [a for a in ll["arm"].values if arm_study[str(a)] == study]
        assert np.allclose(total.sel(dropped_study=study), ll.sel(arm=arms).sum("arm"))
    bad = full.tree.copy()
    renamed = bad["log_likelihood"].to_dataset().assign_coords(arm=["nobody"] + list(ll["arm"].values[1:]))
    bad["log_likelihood"] = xr.DataTree(renamed)

    class Stray:
        tree, used = bad, full.used

        def describe_source(self):
            return "stray.nc"

    with pytest.raises(ValueError, match="'nobody' of log-likelihood variable 'n_recovered' belongs to no used"):
        loso.study_log_likelihood(Stray())


def test_psis_where_reliable_refit_where_k_is_high_or_a_level_loses_its_data(setup, monkeypatch):
    """Routing: a low k and the same parameters -> PSIS (no refit); k above the threshold, or a study
    whose removal leaves a strategy without data -> refit, with the reason in ``method``."""
    outcomes, full = setup
    studies = loso.contributing_studies(full)
    fsh_study = outcomes.loc[outcomes["arm_id"].str.startswith("synth2004"), "study_id"].iloc[0]
    high = next(s for s in studies if s != fsh_study)
    real = loso.psis_weights

    def fake_k(posterior, log_lik):
        log_w, khat = real(posterior, log_lik)
        khat = xr.where(khat["dropped_study"] == high, 0.95, 0.2)
        return log_w, khat

    monkeypatch.setattr(loso, "psis_weights", fake_k)
    table = loso.leave_one_study_out(_cfg(), outcomes=outcomes, full=full, scheduler="inprocess")
    first = table.drop_duplicates("dropped_study").set_index("dropped_study")
    route = first["method"]
    k_max = loso.pareto_k_max(full.posterior.sizes["chain"] * full.posterior.sizes["draw"])
    assert k_max < 0.7  # few draws: a stricter threshold than the 0.7 of large samples
    assert route[high] == f"refit (Pareto k 0.95 > {k_max:.2f})"
    assert route[fsh_study].startswith("refit (without this study: levels of strategy")
    sampled = [s for s in studies if s not in (high, fsh_study)]
    assert (route[sampled] == "psis").all()
    # refits carry their sampler's checks; importance-sampled studies name their k instead
    assert first.loc[[high, fsh_study], "checks"].str.contains("rhat_max").all()
    assert (first.loc[sampled, "checks"] == f"Pareto k 0.20 <= {k_max:.2f}").all()
    gone = table[(table["dropped_study"] == fsh_study) & table["quantity"].str.contains("hcg_fsh")]
    assert gone["loso_median"].isna().all() and gone["note"].str.contains("not estimable").all()
    psis_rows = table[table["method"] == "psis"]
    assert psis_rows["checks_passed"].all() and np.allclose(psis_rows["pareto_k"], 0.2)
    assert (psis_rows["loso_lower95"] <= psis_rows["loso_median"]).all()
    assert (psis_rows["loso_median"] <= psis_rows["loso_upper95"]).all()
    with pytest.raises(ValueError, match="method 'exact'"):
        loso.leave_one_study_out(_cfg(), outcomes=outcomes, full=full, method="exact")


def test_importance_sampled_numbers_cover_only_the_evidence_left(tmp_path, mocked_sampler, monkeypatch):
    """A study that is the only evidence for one strategy x population cell (both levels keep other
    data, so the parameters are the same): PSIS reports that cell as not estimable, as a refit
    would, and the other cells from the reweighted draws."""
    d = tmp_path / "data"
    arms = ARMS[:4] + [{"strategy": "none", "n": 40, "p": 0.5, "population": "aas"},
                       {"strategy": "hcg_serm", "n": 40, "p": 0.7, "population": "aas"}]
    synthetic_tables(d, arms, seed=3)
    outcomes = harmonise(load_dataset(d)).outcomes
    full = fit_analysis(_cfg(), harmonised_outcomes=outcomes, save=False)
    only = outcomes.loc[(outcomes["strategy"] == "none") & (outcomes["population"] == "aas"), "study_id"].iloc[0]
    real = loso.psis_weights

    def low_k(posterior, log_lik):  # the real weights, every k under the threshold
        log_w, khat = real(posterior, log_lik)
        return log_w, xr.full_like(khat, 0.2)

    monkeypatch.setattr(loso, "psis_weights", low_k)
    table = loso.leave_one_study_out(_cfg(), outcomes=outcomes, full=full, studies=[only], scheduler="inprocess")
    assert (table["method"] == "psis").all()
    rows = table.set_index("quantity")
    assert np.isnan(rows.loc["pooled_rate[none,aas]", "loso_median"])
    assert "not estimable" in rows.loc["pooled_rate[none,aas]", "note"]
    assert rows.drop(index="pooled_rate[none,aas]")["loso_median"].notna().all() and len(rows) == 4


def test_a_view_of_the_fit_counts_only_the_evidence_left(setup):
    """``Fit.view``: fewer used rows drop a cell from the headline, the other numbers keep their
    draws, and the fit itself is unchanged."""
    _, full = setup
    headline = full.spec.headline(full)
    fsh = "pooled_rate[hcg_fsh,trt]"
    view = full.view(full.used[full.used["strategy"] != "hcg_fsh"])
    left = full.spec.headline(view)
    assert set(left) == set(headline) - {fsh}
    for q, v in left.items():
        np.testing.assert_array_equal(v, headline[q])
    assert len(full.used) > len(view.used) and fsh in full.spec.headline(full)


def test_survival_observations_are_assigned_to_studies_through_their_outcome_ids(mock_survival_fit):
    """Survival terms label observations ``<outcome_id>#<k>``: every one reaches its study, none twice."""
    total = loso.study_log_likelihood(mock_survival_fit)
    assert list(total["dropped_study"].values) == loso.contributing_studies(mock_survival_fit)
    ll = mock_survival_fit.tree["log_likelihood"].to_dataset()
    every = sum(da.sum([d for d in da.dims if d not in ("chain", "draw")]) for da in ll.data_vars.values())
    np.testing.assert_allclose(total.sum("dropped_study"), every)
