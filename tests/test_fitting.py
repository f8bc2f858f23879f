"""Fitting: saved metadata, reproducibility with a seed, and loud failure of unconverged fits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from conftest import synthetic_tables
from trt_recovery.config import parse_config
from trt_recovery.fitting import META_ATTR, FitFailedError, fit_analysis, load_posterior
from trt_recovery.validate import load_dataset

ARMS = [{"strategy": "hcg_serm", "n": 60, "p": 0.8}, {"strategy": "hcg_serm", "n": 40, "p": 0.7},
        {"strategy": "none", "n": 50, "p": 0.5}, {"strategy": "none", "n": 30, "p": 0.6}]


def _cfg(**checks):
    raw = {"name": "tiny", "model": "binomial_success",
           "sampler": {"seed": 42, "draws": 300, "tune": 300, "chains": 2, "target_accept": 0.95}}
    if checks:
        raw["checks"] = checks
    return parse_config(raw, "tiny.yaml")


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny") / "data"
    synthetic_tables(d, ARMS, seed=1)
    return load_dataset(d)


@pytest.fixture(scope="module")
def tiny_fit(tiny_dataset, tmp_path_factory):
    path = tmp_path_factory.mktemp("post") / "tiny.nc"
    return fit_analysis(_cfg(ess_bulk_min=100, rhat_max=1.1), dataset=tiny_dataset, path=path)


def test_saved_posterior_records_provenance(tiny_fit, tiny_dataset):
    dt = xr.open_datatree(tiny_fit.path)
    meta = json.loads(dt.attrs[META_ATTR])
    assert meta["seed"] == 42
    assert meta["sampler"] == {"seed": 42, "backend": "pymc", "draws": 300, "tune": 300, "chains": 2, "cores": 2,
                               "target_accept": 0.95}
    assert meta["data_hash"] == tiny_dataset.data_hash
    assert len(meta["model_data_hash"]) == 64
    assert meta["packages"]["pymc"].startswith("6.") and meta["packages"]["arviz"].startswith("1.")
    assert meta["git_commit"]
    conv = meta["convergence"]
    assert conv["passed"] is True and {c["check"] for c in conv["checks"]} == {"rhat_max", "ess_bulk_min", "divergences"}
    assert "log_likelihood" in dt.children
    assert len(meta["used_rows"]) == 4


def test_load_posterior_roundtrip(tiny_fit):
    dt, meta = load_posterior(tiny_fit.path)
    a = dt["posterior"]["pooled_rate"].values
    b = tiny_fit.posterior["posterior"]["pooled_rate"].values
    np.testing.assert_array_equal(a, b)


def test_same_seed_gives_identical_draws(tiny_fit, tiny_dataset):
    again = fit_analysis(_cfg(ess_bulk_min=100, rhat_max=1.1), dataset=tiny_dataset, save=False)
    np.testing.assert_array_equal(
        again.posterior["posterior"]["strategy_logit"].values, tiny_fit.posterior["posterior"]["strategy_logit"].values
    )
    other = fit_analysis(_cfg(ess_bulk_min=100, rhat_max=1.1), dataset=tiny_dataset, save=False, seed=43, raise_on_failure=False)
    assert not np.array_equal(
        other.posterior["posterior"]["strategy_logit"].values, tiny_fit.posterior["posterior"]["strategy_logit"].values
    )


def test_failed_checks_raise_and_never_become_the_cached_posterior(tiny_dataset, tmp_path):
    target = tmp_path / "tiny.nc"
    with pytest.raises(FitFailedError, match=r"FIT FAILED .*ess_bulk_min: .*FAIL"):
        fit_analysis(_cfg(ess_bulk_min=10**6), dataset=tiny_dataset, path=target)
    assert not target.exists()
    failed = tmp_path / "tiny.failed.nc"
    assert failed.exists()
    with pytest.raises(FitFailedError, match="failed its convergence checks"):
        load_posterior(failed)
