"""Simulation-based calibration: data of the real shape from a prior draw, ranks, uniformity.

No NUTS: the replication test uses the mocked sampler (its 'posterior' is prior draws, which is
exactly what a calibrated fit of data carrying no information would give).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trt_recovery.survival import sbc


@pytest.fixture(scope="module")
def template(simulated_survival_table):
    from helpers import mock_config
    from trt_recovery.models import get_model
    from trt_recovery.survival.families import get_family

    cfg = mock_config("sbcsim", "survival_cure_weibull")
    spec = get_model(cfg.model)
    table = simulated_survival_table.copy()
    median = table.index[(table.outcome == "time_to_recovery") & (table.statistic == "median") & (table.over == "all")][0]
    table.loc[median, "n"] = np.nan  # one median without its number of men (the quantile_unknown_n term)
    table.loc[median, "arm_n"] = pd.NA
    mean = table.index[(table.outcome == "time_to_recovery") & (table.statistic == "mean")][0]
    # one mean over all men with its 95% CI and only a shortest follow-up (the restricted_mean term)
    table.loc[mean, ["over", "time_months", "time_stat", "dispersion_type", "lower", "upper"]] = [
        "all", 6.0, "min_followup", "ci95", table.loc[mean, "value"] - 0.5, table.loc[mean, "value"] + 0.5]
    md = spec.prepare(table, cfg.data)
    assert len(md.terms["quantile_unknown_n"]) == 1 and len(md.terms["restricted_mean"]) == 1
    truths = sbc.prior_truths(cfg, md, 3, seed=5)
    return cfg, md, truths, get_family("weibull"), {**spec.default_priors, **cfg.priors}


def test_simulated_data_keep_the_real_shape_and_are_reproducible(template):
    cfg, md, truths, fam, priors = template
    a = sbc.simulate_terms(md, truths, 0, fam, 11, priors)
    b = sbc.simulate_terms(md, truths, 0, fam, 11, priors)
    c = sbc.simulate_terms(md, truths, 0, fam, 12, priors)
    assert a.arms.equals(md.arms)  # same arms, strategies, populations, covariates
    n_rows = {k: len(v) for k, v in md.terms.items()}
    # a row changes format only between 'quantile'/'not reached'/'count': the total is kept
    assert sum(len(v) for v in a.terms.values()) == sum(n_rows.values())
    for name, frame in a.terms.items():
        pd.testing.assert_frame_equal(frame, b.terms[name])
        if len(frame):
            assert a.coords[f"{name}_obs"] == frame["outcome_id"].astype(str).add("#").add(frame.index.astype(str)).tolist()
    ic = a.terms["interval_count"]
    assert ((ic["events"] >= 0) & (ic["events"] <= ic["at_risk"])).all()
    assert any(not a.terms[k].equals(c.terms[k]) for k in a.terms if len(a.terms[k]))  # the seed matters
    # thresholds, times and sizes of the real rows are kept
    orig = md.terms["interval_count"].set_index("outcome_id")
    kept = ic[ic["outcome_id"].isin(orig.index)].set_index("outcome_id")
    assert (kept["t1"] == orig.loc[kept.index, "t1"]).all() and (kept["threshold"] == orig.loc[kept.index, "threshold"]).all()


def test_every_term_is_simulated_and_an_unknown_one_is_an_error(template):
    from dataclasses import replace

    cfg, md, truths, fam, priors = template
    a = sbc.simulate_terms(md, truths, 0, fam, 11, priors)
    rm, orig = a.terms["restricted_mean"].iloc[0], md.terms["restricted_mean"].iloc[0]
    assert rm["value"] != orig["value"] and rm["se"] == orig["se"] and np.isfinite(rm["value"])
    odd = replace(md, terms={**md.terms, "new_format": md.terms["mean_time"]})
    with pytest.raises(NotImplementedError, match="new_format"):
        sbc.simulate_terms(odd, truths, 0, fam, 11, priors)


def test_a_replication_returns_ranks_within_the_thinned_draws(template, mocked_sampler, monkeypatch):
    cfg, md, truths, fam, priors = template
    monkeypatch.setattr(sbc, "SBC_SAMPLER", {"chains": 2, "draws": 50, "tune": 0})
    truth = {k: v[1] for k, v in truths.items()}
    rep = sbc.Replication(1, cfg, sbc.simulate_terms(md, truths, 1, fam, 3, priors), truth, 77)
    out = sbc.run_replication(rep)
    assert out["n_draws"] == 100 // sbc.THIN
    assert {"time_intercept", "weibull_shape", "study_time_sd"} <= set(out["ranks"])
    assert any(k.startswith("p_recovered_12m[") for k in out["ranks"])
    assert all(0 <= r <= out["n_draws"] for r in out["ranks"].values())


def test_uniformity_flags_a_biased_rank_distribution():
    rng = np.random.default_rng(0)
    n_draws = 99
    uniform = pd.DataFrame({"quantity": "good", "rank": rng.integers(0, n_draws + 1, 300)})
    biased = pd.DataFrame({"quantity": "biased", "rank": np.minimum(rng.integers(0, n_draws + 1, 300),
                                                                     rng.integers(0, n_draws + 1, 300))})
    table = sbc.uniformity(pd.concat([uniform, biased]), n_draws).set_index("quantity")
    assert table.loc["good", "inside_band"] and not table.loc["biased", "inside_band"]
    assert table.loc["biased", "mean_fractional_rank"] < 0.4 < table.loc["good", "mean_fractional_rank"]


def test_sbc_summary_reads_the_saved_tables(tmp_path, monkeypatch):
    from trt_recovery import paths

    monkeypatch.setattr(paths, "TABLES_DIR", tmp_path)
    assert sbc.sbc_summary() is None
    ranks = pd.DataFrame({"replication": [0, 0, 1, 1], "quantity": ["a", "b", "a", "b"], "rank": [3, 50, 60, 99],
                          "n_draws": 100, "passed": [True, True, False, False], "seconds": 10.0,
                          "divergences": [0, 0, 2, 2]})
    ranks.to_csv(tmp_path / "survival_sbc_ranks.csv", index=False)
    sbc.uniformity(ranks, 100).assign(inside_band=[True, False]).to_csv(tmp_path / "survival_sbc_uniformity.csv",
                                                                        index=False)
    out = sbc.sbc_summary()
    assert out["replications"] == 2 and "1 passed" in out["text"] and "outside: b" in out["text"]
    assert "1 had divergences" in out["text"]
    assert "STALE" in out["text"]  # these ranks record no model: they cannot be trusted for the current one
    from trt_recovery.config import config_identity, load_config
    from trt_recovery.models import get_model

    cfg = load_config(paths.analysis_config("survival"))
    current = ranks.assign(model_identity=get_model(cfg.model).identity(), config_identity=config_identity(cfg))
    current.to_csv(tmp_path / "survival_sbc_ranks.csv", index=False)
    assert not sbc.sbc_summary()["stale"]
    current.assign(model_identity="0" * 64).to_csv(tmp_path / "survival_sbc_ranks.csv", index=False)
    assert sbc.sbc_summary()["stale"] == "the model's code changed since"


def test_a_stopped_run_is_summarised_from_its_partial_ranks(tmp_path, monkeypatch):
    from trt_recovery import paths

    monkeypatch.setattr(paths, "TABLES_DIR", tmp_path)
    monkeypatch.setattr(paths, "FIGURES_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="no partial SBC result"):
        sbc.summarise_partial()
    rng = np.random.default_rng(1)
    partial = pd.DataFrame({"replication": np.repeat(np.arange(20), 2), "quantity": ["a", "b"] * 20,
                            "rank": rng.integers(0, 101, 40), "n_draws": 100, "passed": False, "seconds": 5.0,
                            "divergences": 0})
    partial.to_csv(tmp_path / "survival_sbc_ranks.partial.csv", index=False)
    assert sbc.main(["--from-partial"]) == 0
    assert not (tmp_path / "survival_sbc_ranks.partial.csv").exists()
    out = sbc.sbc_summary()
    assert out["replications"] == 20 and list(out["table"]["quantity"]) == ["a", "b"]
    assert (tmp_path / "survival_sbc_ecdf.png").exists()


def test_prior_truths_of_more_replications_start_with_those_of_fewer(template):
    """What lets a resumed run extend saved ranks: replication i gets the same truth whatever n."""
    cfg, md, truths, _, _ = template
    fewer = sbc.prior_truths(cfg, md, 2, seed=5)
    # free variables bit for bit; deterministics to rounding (a first compile may fuse differently)
    assert all(np.allclose(fewer[k], truths[k][:2], rtol=0, atol=1e-12) for k in fewer)


def test_a_resumed_run_fits_only_the_missing_replications_and_refuses_other_ranks(tmp_path, monkeypatch):
    from trt_recovery import parallel, paths
    from trt_recovery.config import load_config

    monkeypatch.setattr(paths, "TABLES_DIR", tmp_path)
    monkeypatch.setattr(paths, "FIGURES_DIR", tmp_path)
    cfg = load_config(paths.analysis_config("survival"))
    seed, n_draws = 7, len(range(0, sbc.SBC_SAMPLER["chains"] * sbc.SBC_SAMPLER["draws"], sbc.THIN))

    def result(i):
        return {"replication": i, "seed": seed + sbc.REFIT_SEED_OFFSET + i, "n_draws": n_draws, "passed": False,
                "divergences": 0, "seconds": 1.0, "ranks": {"a": (13 * i) % (n_draws + 1), "b": (7 * i) % (n_draws + 1)}}

    saved = sbc.rank_table([result(0), result(1)], cfg)
    saved.to_csv(tmp_path / "survival_sbc_ranks.csv", index=False)
    monkeypatch.setattr(sbc, "replications", lambda config, n, seed, sampler=None: [
        sbc.Replication(i, config, None, {}, seed + sbc.REFIT_SEED_OFFSET + i, sampler) for i in range(n)])
    ran, partial = [], []

    def fake_run_tasks(fn, items, labels, scheduler=None, n_workers=None, on_result=None):
        results = []
        for k, r in enumerate(items):
            ran.append(r.index)
            results.append(result(r.index))
            on_result(k, results[-1])
        partial.append(pd.read_csv(tmp_path / "survival_sbc_ranks.partial.csv"))  # what a stopped run would leave
        return results

    monkeypatch.setattr(parallel, "run_tasks", fake_run_tasks)
    ranks, summary, _ = sbc.run("survival", 12, seed, resume=True)
    assert ran == list(range(2, 12))  # the saved replications are not refitted
    assert sorted(ranks["replication"].unique()) == list(range(12))
    assert sorted(partial[0]["replication"].unique()) == list(range(12))  # the saved ranks are kept in it too
    assert sbc.sbc_summary()["replications"] == 12 and not sbc.sbc_summary()["stale"]

    with pytest.raises(ValueError, match="base seed"):  # other truths: not the same SBC
        sbc.resumable_ranks("survival", cfg, seed + 1, sbc.SBC_SAMPLER)
    with pytest.raises(ValueError, match="thinned draws"):
        sbc.resumable_ranks("survival", cfg, seed, {**sbc.SBC_SAMPLER, "draws": 2 * sbc.SBC_SAMPLER["draws"]})
    saved.assign(model_identity="0" * 64).to_csv(tmp_path / "survival_sbc_ranks.csv", index=False)
    with pytest.raises(ValueError, match="model's code changed"):
        sbc.resumable_ranks("survival", cfg, seed, sbc.SBC_SAMPLER)
