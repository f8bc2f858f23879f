"""The CLI's exit codes and messages, and headless notebook execution on a small seeded fit."""

from __future__ import annotations

import nbformat
import pytest

from conftest import read, synthetic_tables, write
from trt_recovery import cli, paths
from trt_recovery.config import parse_config
from trt_recovery.fitting import fit_analysis
from trt_recovery.notebooks import execute_notebook
from trt_recovery.validate import load_dataset


def test_validate_ok(capsys):
    assert cli.main(["validate"]) == 0
    assert capsys.readouterr().out.startswith("OK: ")


def test_validate_reports_problems_and_fails(data_dir, capsys):
    o = read(data_dir, "outcomes")
    o.loc[o["outcome_id"] == "kohn2017_all_1", "events"] = "99"
    write(data_dir, "outcomes", o)
    assert cli.main(["validate", "--data-dir", str(data_dir)]) == 1
    err = capsys.readouterr().err
    assert "INVALID: 1 problem(s)" in err and "outcomes.csv, row 4" in err and "events (99) exceed n (66)" in err


def test_dictionary_check_passes(capsys):
    assert cli.main(["dictionary", "--check"]) == 0


def test_fit_unknown_analysis_is_a_clear_error(capsys):
    assert cli.main(["fit", "no_such_analysis"]) == 1
    assert "no such analysis config" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_posterior(tmp_path_factory):
    d = tmp_path_factory.mktemp("nb") / "data"
    synthetic_tables(d, [{"strategy": "hcg_serm", "n": 80, "p": 0.8}, {"strategy": "none", "n": 60, "p": 0.5}], seed=2)
    cfg = parse_config({"name": "nbtest", "model": "binomial_success",
                        "sampler": {"seed": 9, "draws": 300, "tune": 300, "chains": 2},
                        # a smoke-test fit: looser gates than a real analysis, stated here
                        "checks": {"rhat_max": 1.1, "ess_bulk_min": 50}}, "nbtest.yaml")
    path = d.parent / "nbtest.nc"
    fit_analysis(cfg, dataset=load_dataset(d), path=path)
    return path


@pytest.mark.parametrize("notebook", sorted(paths.NOTEBOOKS_DIR.glob("0[1]_*.py")), ids=lambda p: p.stem)
def test_notebook_executes_headless_on_small_fit(notebook, tiny_posterior, tmp_path):
    out = execute_notebook(notebook, parameters={"analysis": str(tiny_posterior)}, output=tmp_path / "out.ipynb")
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook shows no figure"
