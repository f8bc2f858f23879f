"""Fitting: saved provenance, the convergence gates, and loud failure of unconverged fits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from helpers import mock_config, synthetic_tables
from trt_recovery.config import ChecksConfig, parse_config
from trt_recovery.fitting import FitFailedError, check_convergence, fit_analysis
from trt_recovery.posterior import load_fit
from trt_recovery.validate import load_dataset

ARMS = [{"strategy": "hcg_serm", "n": 60, "p": 0.8}, {"strategy": "hcg_serm", "n": 40, "p": 0.7},
        {"strategy": "none", "n": 50, "p": 0.5}, {"strategy": "none", "n": 30, "p": 0.6}]


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny") / "data"
    synthetic_tables(d, ARMS, seed=1)
    return load_dataset(d)


def test_saved_fit_records_provenance_in_groups(mocked_sampler, tiny_dataset, tmp_path):
    cfg = mock_config("tiny", "binomial_success")
    fit = fit_analysis(cfg, dataset=tiny_dataset, path=tmp_path / "tiny.nc")
    dt = xr.open_datatree(fit.path)
    assert dt.attrs["seed"] == 11 and dt.attrs["model"] == "binomial_success"
    assert dt.attrs["data_hash"] == tiny_dataset.data_hash and dt.attrs["data_source"] == "dataset"
    assert len(dt.attrs["model_data_hash"]) == 64 and len(dt.attrs["model_identity"]) == 64
    assert dt.attrs["inference_library"] == "pymc" and dt.attrs["creation_library"] == "trt-recovery"
    assert {"used_rows", "exclusions"} <= set(dt["provenance"].children)
    assert "log_likelihood" in dt.children and "prior" in dt.children
    loaded = load_fit(fit.path)
    assert loaded.sampler == {"seed": 11, "backend": "pymc", "draws": 100, "tune": 0, "chains": 2, "cores": 2,
                              "target_accept": 0.9, "mass_matrix": "diag", "max_treedepth": 10}
    assert loaded.packages["pymc"].startswith("6.") and loaded.packages["arviz"].startswith("1.")
    assert len(loaded.used) == 4 and set(loaded.used["arm_id"]) == set(fit.used["arm_id"])
    checks = {c["check"] for c in loaded.convergence["checks"]}
    assert checks == {"rhat_max", "ess_bulk_min", "divergences", "ebfmi_min", "max_treedepth_share"}
    # every free variable of the model is checked, not a chosen few
    assert set(json.loads(loaded.tree["provenance"].attrs["free_variables"])) == {"strategy_logit", "study_sd", "study_z"}


def test_failed_checks_raise_and_never_become_the_cached_posterior(mocked_sampler, tiny_dataset, tmp_path):
    target = tmp_path / "tiny.nc"
    cfg = parse_config({"name": "tiny", "model": "binomial_success", "sampler": {"seed": 3, "draws": 50, "chains": 2},
                        "checks": {"ess_bulk_min": 10**6}}, "tiny.yaml")
    with pytest.raises(FitFailedError, match=r"FIT FAILED .*ess_bulk_min: .*FAIL"):
        fit_analysis(cfg, dataset=tiny_dataset, path=target)
    assert not target.exists()
    failed = tmp_path / "tiny.failed.nc"
    assert failed.exists()
    with pytest.raises(FitFailedError, match="failed its convergence checks"):
        load_fit(failed)
    assert load_fit(failed, allow_failed=True).passed is False
    # a later run that passes replaces it: no failed posterior is left beside the good one
    ok = parse_config({"name": "tiny", "model": "binomial_success", "sampler": {"seed": 3, "draws": 50, "chains": 2},
                       "checks": {"ess_bulk_min": 10, "rhat_max": 1.5}}, "tiny.yaml")
    fit_analysis(ok, dataset=tiny_dataset, path=target)
    assert target.exists() and not failed.exists()


def _tree(post: dict, stats: dict) -> xr.DataTree:
    return xr.DataTree.from_dict({"posterior": xr.Dataset({k: (("chain", "draw"), v) for k, v in post.items()}),
                                  "sample_stats": xr.Dataset({k: (("chain", "draw"), v) for k, v in stats.items()})})


def test_convergence_gates_each_catch_their_failure():
    rng = np.random.default_rng(0)
    good = rng.normal(size=(4, 500))
    stats = {"diverging": np.zeros((4, 500), bool), "energy": rng.normal(size=(4, 500)), "tree_depth": np.full((4, 500), 4)}
    rep = check_convergence(_tree({"a": good}, stats), ["a"], ChecksConfig())
    assert rep.passed, rep.describe()
    # chains stuck in different places: R-hat fails and names the variable
    stuck = good + np.arange(4)[:, None]
    rep = check_convergence(_tree({"a": good, "b": stuck}, stats), ["a", "b"], ChecksConfig())
    assert not rep.passed and rep.worst["rhat"] == "b"
    # a variable left out of var_names is not checked
    assert check_convergence(_tree({"a": good, "b": stuck}, stats), ["a"], ChecksConfig()).passed
    # divergences, low E-BFMI (a slowly drifting energy) and saturated trees each fail their own gate
    for key, value, failing in (
        ("diverging", np.eye(4, 500, dtype=bool), "divergences"),
        ("energy", np.cumsum(rng.normal(size=(4, 500)), axis=1), "ebfmi_min"),
        ("tree_depth", np.full((4, 500), 10), "max_treedepth_share"),
    ):
        rep = check_convergence(_tree({"a": good}, {**stats, key: value}), ["a"], ChecksConfig())
        assert [c["check"] for c in rep.checks if not c["passed"]] == [failing]
    # depth 10 saturates a sampler allowed 10, not one allowed 12
    deep = {**stats, "tree_depth": np.full((4, 500), 10)}
    assert check_convergence(_tree({"a": good}, deep), ["a"], ChecksConfig(), max_depth=12).passed
    assert not check_convergence(_tree({"a": good}, deep), ["a"], ChecksConfig(), max_depth=10).passed


def test_max_treedepth_reaches_every_backend(monkeypatch):
    """``sampler.max_treedepth`` under each backend's own name: nutpie's ``maxdepth``, PyMC's
    ``max_treedepth``, numpyro's ``max_tree_depth`` (the sampling calls are replaced by recorders)."""
    import nutpie
    import pymc as pm

    from trt_recovery.compiled import CompiledModels
    from trt_recovery.config import SamplerConfig
    from trt_recovery.fitting import sample

    received = {}

    class Stop(Exception):
        pass

    def record(name):
        def rec(*args, **kwargs):
            received[name] = kwargs
            raise Stop
        return rec

    monkeypatch.setattr(nutpie, "sample", record("nutpie"))
    monkeypatch.setattr(CompiledModels, "compiled_for", lambda self, model: object())
    monkeypatch.setattr(pm, "sample", record("pm"))
    with pm.Model() as model:
        pm.Normal("x")
    for backend in ("nutpie", "pymc", "numpyro"):
        with pytest.raises(Stop):
            sample(model, SamplerConfig(seed=1, backend=backend, max_treedepth=12))
        if backend == "nutpie":
            assert received["nutpie"]["maxdepth"] == 12
        else:
            key = "max_tree_depth" if backend == "numpyro" else "max_treedepth"
            assert received["pm"]["nuts"] == {"target_accept": 0.9, key: 12}


@pytest.mark.sampling
def test_same_seed_gives_identical_draws_with_real_nuts(tiny_dataset):
    cfg = parse_config({"name": "tiny", "model": "binomial_success",
                        "sampler": {"seed": 42, "backend": "pymc", "draws": 60, "tune": 60, "chains": 2, "cores": 1},
                        # a determinism check, not an analysis: gates loosened and stated here
                        "checks": {"ess_bulk_min": 10, "rhat_max": 1.2, "max_divergences": 10,
                                   "max_treedepth_share": 1.0}}, "tiny.yaml")
    a = fit_analysis(cfg, dataset=tiny_dataset, save=False)
    b = fit_analysis(cfg, dataset=tiny_dataset, save=False)
    np.testing.assert_array_equal(a.posterior["strategy_logit"].values, b.posterior["strategy_logit"].values)
    c = fit_analysis(cfg, dataset=tiny_dataset, save=False, seed=43, raise_on_failure=False)
    assert not np.array_equal(a.posterior["strategy_logit"].values, c.posterior["strategy_logit"].values)
