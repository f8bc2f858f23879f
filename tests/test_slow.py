"""Slow tier (make test-slow): full-length seeded fits that must pass the real convergence gates."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import synthetic_tables
from trt_recovery import paths
from trt_recovery.config import load_config, parse_config
from trt_recovery.fitting import fit_analysis
from trt_recovery.notebooks import execute_notebook
from trt_recovery.validate import load_dataset

pytestmark = pytest.mark.slow


def test_binomial_parameter_recovery_with_strict_gates(tmp_path):
    truth = {"hcg_serm": 0.9, "hcg": 0.7, "none": 0.5}
    arms = [{"strategy": s, "n": int(n), "p": p} for s, p in truth.items() for n in (40, 80, 120, 60, 100)]
    synthetic_tables(tmp_path / "data", arms, seed=17)
    cfg = parse_config({"name": "recovery", "model": "binomial_success",
                        "sampler": {"seed": 2026, "draws": 1000, "tune": 1000, "chains": 4}}, "recovery.yaml")
    res = fit_analysis(cfg, dataset=load_dataset(tmp_path / "data"), save=False)
    assert res.convergence.passed
    post = res.posterior["posterior"]["pooled_rate"]
    for s, p in truth.items():
        lo, hi = np.quantile(post.sel(strategy=s).values.ravel(), [0.05, 0.95])
        assert lo < p < hi, f"{s}: {p} outside ({lo:.3f}, {hi:.3f})"


NOTEBOOK_ANALYSIS = {"02_success_rates": "success_rate", "03_time_to_recovery": "survival",
                     "04_concentration": "concentration"}
#: notebook 05 runs on every survival fit: `make all` executes it for real on the repository's fits


@pytest.mark.parametrize("notebook", sorted(NOTEBOOK_ANALYSIS))
def test_real_analysis_fits_and_its_notebook_runs(notebook, tmp_path):
    name = NOTEBOOK_ANALYSIS[notebook]
    res = fit_analysis(load_config(name), path=tmp_path / f"{name}.nc")
    assert res.convergence.passed
    execute_notebook(paths.NOTEBOOKS_DIR / f"{notebook}.py", parameters={"analysis": str(res.path)},
                     output=tmp_path / f"{notebook}.ipynb")
