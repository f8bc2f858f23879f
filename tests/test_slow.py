"""Slow tier (make test-slow): full-length seeded fits that must pass the real convergence gates."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import synthetic_tables
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
    post = res.posterior["pooled_rate"]
    for s, p in truth.items():
        lo, hi = np.quantile(post.sel(strategy=s).values.ravel(), [0.05, 0.95])
        assert lo < p < hi, f"{s}: {p} outside ({lo:.3f}, {hi:.3f})"


NOTEBOOK_ANALYSIS = {"02_success_rates": "success_rate", "03_time_to_recovery": "survival",
                     "04_concentration": "concentration", "06_clinical_claims": "survival"}
#: notebook 05 runs on every survival fit: `make all` executes it for real on the repository's fits


@pytest.fixture(scope="module")
def real_fits(tmp_path_factory):
    out = {}
    for name in sorted(set(NOTEBOOK_ANALYSIS.values())):
        out[name] = fit_analysis(load_config(name), path=tmp_path_factory.mktemp(name) / f"{name}.nc")
    return out


@pytest.mark.parametrize("notebook", sorted(NOTEBOOK_ANALYSIS))
def test_real_analysis_fits_and_its_notebook_runs_in_a_kernel(notebook, real_fits, tmp_path):
    """The real fit passes its gates (fit_analysis raises otherwise) and the notebook runs headless
    in the project's kernel, as `make notebooks` runs it."""
    import nbformat

    res = real_fits[NOTEBOOK_ANALYSIS[notebook]]
    out = execute_notebook(paths.NOTEBOOKS_DIR / f"{notebook}.py", parameters={"analysis": str(res.path)},
                           output=tmp_path / f"{notebook}.ipynb")
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook shows no figure"
