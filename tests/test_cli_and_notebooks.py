"""The CLI's exit codes and messages, and headless notebook execution on a small seeded fit."""

from __future__ import annotations

import json

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


@pytest.fixture(scope="module")
def tiny_survival_posterior(tmp_path_factory):
    from trt_recovery.survival.simulate import simulate_studies

    df, _ = simulate_studies(12, seed=5)
    cfg = parse_config({"name": "nbsurv", "model": "survival_cure_weibull",
                        "sampler": {"seed": 4, "draws": 150, "tune": 150, "chains": 2},
                        # a smoke-test fit: gates loosened and stated here
                        "checks": {"rhat_max": 1.9, "ess_bulk_min": 1, "max_divergences": 1000}}, "nbsurv.yaml")
    path = tmp_path_factory.mktemp("nbs") / "nbsurv.nc"
    fit_analysis(cfg, harmonised_outcomes=df, path=path)
    return path


@pytest.fixture(scope="module")
def tiny_concentration_posterior(tmp_path_factory):
    from test_concentration import simulate_arms

    df, _ = simulate_arms(seed=1, n_arms=8)
    cfg = parse_config({"name": "nbconc", "model": "lognormal_concentration",
                        "sampler": {"seed": 3, "draws": 200, "tune": 200, "chains": 2},
                        # a smoke-test fit: gates loosened and stated here
                        "checks": {"rhat_max": 1.9, "ess_bulk_min": 1, "max_divergences": 1000}}, "nbconc.yaml")
    path = tmp_path_factory.mktemp("nbc") / "nbconc.nc"
    fit_analysis(cfg, harmonised_outcomes=df, path=path)
    return path


#: posterior fixture each notebook runs on in the fast tier (None: the notebook needs no posterior)
NOTEBOOK_POSTERIORS = {
    "01_data_and_evidence": None,
    "02_success_rates": "tiny_posterior",
    "03_time_to_recovery": "tiny_survival_posterior",
    "04_concentration": "tiny_concentration_posterior",
    "05_checks_and_sensitivity": "tiny_survival_posterior",
    "06_clinical_claims": "tiny_survival_posterior",
}


def test_every_notebook_is_tested():
    assert {p.stem for p in paths.NOTEBOOKS_DIR.glob("[0-9]*.py")} == set(NOTEBOOK_POSTERIORS)


@pytest.mark.parametrize("notebook", sorted(paths.NOTEBOOKS_DIR.glob("[0-9]*.py")), ids=lambda p: p.stem)
def test_notebook_executes_headless_on_small_fit(notebook, request, tmp_path):
    fixture = NOTEBOOK_POSTERIORS[notebook.stem]
    params = {"analysis": str(request.getfixturevalue(fixture))} if fixture else {}
    if notebook.stem == "05_checks_and_sensitivity":  # every fit points at the small fit
        p = params.pop("analysis")
        params = {"families": {"a": p, "b": p}, "sensitivity": {"main": p, "again": p}}
    out = execute_notebook(notebook, parameters=params, output=tmp_path / "out.ipynb")
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook shows no figure"


@pytest.fixture
def fake_survival_posterior(tmp_path):
    import json

    from test_survival_predict import META, fake_posterior

    dt = fake_posterior()
    meta = {**META, "convergence": {"passed": True}}
    dt.attrs["trt_recovery"] = json.dumps(meta)
    path = tmp_path / "fake.nc"
    dt.to_netcdf(path)
    return path


def test_predict_text_and_json(fake_survival_posterior, capsys):
    assert cli.main(["predict", "--analysis", str(fake_survival_posterior), "--strategy", "hcg_serm",
                     "--times", "3,6,12"]) == 0
    out = capsys.readouterr().out
    assert "P(recovered by 12 months)" in out and "average study" in out and "new study" in out
    assert cli.main(["predict", "--analysis", str(fake_survival_posterior), "--strategy", "gonadorelin",
                     "--format", "json", "--times", "6"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"average_study", "new_study", "note", "profile"}
    assert "No direct evidence" in data["note"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "hcg_only"], "unknown strategy 'hcg_only' (valid: none, hcg"),
        (["--threshold", "7"], "unknown threshold '7'"),
        (["--age", "150"], "age must be in [12, 90]"),
        (["--trt-months", "-3"], "TRT duration must be in (0, 600]"),
        (["--times", "3,x"], "--times must be comma-separated numbers"),
    ],
)
def test_predict_rejects_bad_input_with_valid_values(fake_survival_posterior, capsys, args, message):
    assert cli.main(["predict", "--analysis", str(fake_survival_posterior), *args]) == 1
    assert message in capsys.readouterr().err


def test_verify_passes_on_reproduction_and_fails_on_a_changed_number(tiny_survival_posterior, tmp_path):
    from trt_recovery import verify as V

    ref = V.write_reference("nbsurv", posterior=tiny_survival_posterior, target=tmp_path / "ref.json")
    table = V.verify("nbsurv", posterior=tiny_survival_posterior, reference=ref)
    assert len(table) > 0 and (table["status"] == "pass").all()
    data = json.loads(ref.read_text())
    key = next(iter(data["values"]))
    data["values"][key] += 0.5
    ref.write_text(json.dumps(data))
    table = V.verify("nbsurv", posterior=tiny_survival_posterior, reference=ref)
    assert table.set_index("quantity").loc[key, "status"] == "FAIL"
    data["data_hash"] = "0" * 64
    ref.write_text(json.dumps(data))
    assert "data changed" in V.verify("nbsurv", posterior=tiny_survival_posterior, reference=ref)["status"].iloc[-1]


def test_committed_references_match_current_data():
    import json as _json

    from trt_recovery import verify as V
    from trt_recovery.validate import load_dataset

    from PIL import Image

    refs = sorted(V.REFERENCE_DIR.glob("*.json"))
    assert refs
    for r in refs:
        assert _json.loads(r.read_text())["data_hash"] == load_dataset().data_hash, f"{r.name} is stale"
    # the README's main figure is a committed reference output too
    assert Image.open(V.README_FIGURE).text["data_hash"] == load_dataset().data_hash, "README figure is stale"
    assert "analysis/reference/survival_curves.png" in (paths.ROOT / "README.md").read_text()
