"""The CLI's exit codes and messages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import read, write
from trt_recovery import cli, paths


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


def test_unknown_name_is_one_line_but_a_bug_keeps_its_traceback(monkeypatch, capsys):
    assert cli.main(["priors", "no_such_model"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unknown model 'no_such_model' (registered: ") and "Traceback" not in err

    def broken(args):
        return {}["conc_mean"]  # a programming error, not bad input

    monkeypatch.setattr(cli, "cmd_validate", broken)
    with pytest.raises(KeyError, match="conc_mean"):
        cli.main(["validate"])
    assert "internal error (a bug, not a problem with your input)" in capsys.readouterr().err


def test_predict_text_and_json(mock_survival_fit, capsys):
    path = str(mock_survival_fit.path)
    assert cli.main(["predict", "--analysis", path, "--strategy", "hcg_serm", "--times", "3,6,12"]) == 0
    out = capsys.readouterr().out
    assert "P(recovered by 12 months)" in out and "average study" in out and "new study" in out
    assert "median time to recovery" in out and "nan" not in out
    assert cli.main(["predict", "--analysis", path, "--strategy", "gonadorelin", "--format", "json", "--times", "6"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"average_study", "new_study", "note", "profile", "evidence"}
    assert "No direct evidence" in data["note"] and data["evidence"]["rows"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "hcg_only"], "unknown strategy 'hcg_only' (valid: none, hcg"),
        (["--threshold", "7"], "unknown threshold '7'"),
        (["--age", "150"], "age (years) must be in [12, 90]"),
        (["--trt-months", "-3"], "duration of androgen use (months) must be in [0, 600]"),
        (["--times", "3,x"], "--times must be comma-separated numbers"),
        (["--times", "nan"], "--times must be positive months"),
    ],
)
def test_predict_rejects_bad_input_with_valid_values(mock_survival_fit, capsys, args, message):
    assert cli.main(["predict", "--analysis", str(mock_survival_fit.path), *args]) == 1
    assert message in capsys.readouterr().err


def test_verify_passes_on_reproduction_and_names_a_changed_number(mock_survival_fit, tmp_path):
    from trt_recovery import verify as V

    path = mock_survival_fit.path
    ref = V.write_reference("mocksurv", posterior=path, target=tmp_path / "ref.json")
    table = V.verify("mocksurv", posterior=path, reference=ref)
    assert len(table) > 0 and (table["status"] == "pass").all()
    data = json.loads(ref.read_text())
    key = next(iter(data["values"]))
    data["values"][key] += 0.5
    ref.write_text(json.dumps(data))
    table = V.verify("mocksurv", posterior=path, reference=ref)
    assert table.set_index("quantity").loc[key, "status"] == "FAIL"
    data["data_hash"] = "0" * 64
    ref.write_text(json.dumps(data))
    assert "data changed" in V.verify("mocksurv", posterior=path, reference=ref)["status"].iloc[-1]


def test_committed_references_match_current_data():
    from PIL import Image

    from trt_recovery import verify as V
    from trt_recovery.validate import load_dataset

    refs = sorted(V.REFERENCE_DIR.glob("*.json"))
    assert refs
    for r in refs:
        assert json.loads(r.read_text())["data_hash"] == load_dataset().data_hash, f"{r.name} is stale"
    # the README's main figure is a committed reference output too
    assert Image.open(V.README_FIGURE).text["data_hash"] == load_dataset().data_hash, "README figure is stale"
    assert "analysis/reference/survival_curves.png" in (paths.ROOT / "README.md").read_text()


def test_a_failed_sensitivity_fit_is_reported_and_does_not_stop_the_build(tmp_path, monkeypatch, mocked_sampler,
                                                                          simulated_survival_table, capsys):
    """`fit --allow-failure` exits 0 with a 'failed' status file; `report` says FAILED and goes on for a
    sensitivity fit, but fails for a main analysis."""
    import yaml

    from trt_recovery import config as config_mod
    from trt_recovery import fitting, paths

    monkeypatch.setattr(paths, "POSTERIORS_DIR", tmp_path / "posteriors")
    monkeypatch.setattr(fitting, "harmonise", lambda ds: type("H", (), {"outcomes": simulated_survival_table,
                                                                        "exclusions": simulated_survival_table.iloc[:0]})())
    cfg = tmp_path / "sensfail.yaml"
    cfg.write_text(yaml.safe_dump({"name": "sensfail", "model": "binomial_success",
                                   "sampler": {"seed": 3, "draws": 20, "tune": 0, "chains": 2},
                                   "checks": {"ess_bulk_min": 10**6}}))
    status = tmp_path / "sensfail.status.json"
    assert cli.main(["fit", str(cfg), "--allow-failure", "--status-file", str(status)]) == 0
    assert json.loads(status.read_text())["passed"] is False
    assert (tmp_path / "posteriors" / "sensfail.failed.nc").exists()
    assert cli.main(["fit", str(cfg), "--status-file", str(status)]) == 2  # without the flag: the build stops
    capsys.readouterr()
    monkeypatch.setattr(config_mod, "sensitivity_analyses", lambda: ["sensfail"])
    assert cli.main(["report", "sensfail"]) == 0
    assert "sensitivity fit FAILED" in capsys.readouterr().out
    monkeypatch.setattr(config_mod, "sensitivity_analyses", lambda: [])
    assert cli.main(["report", "sensfail"]) == 1
    assert "MAIN ANALYSIS FAILED" in capsys.readouterr().out


def test_output_to_a_closed_pipe_ends_quietly(monkeypatch, capsys):
    def closed_pipe(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "cmd_outputs", closed_pipe)
    assert cli.main(["outputs"]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_verify_names_the_cause_of_a_mismatch_and_shows_times_as_months(mock_survival_fit, tmp_path):
    from trt_recovery import verify as V

    path = mock_survival_fit.path
    ref = V.write_reference("mocksurv", posterior=path, target=tmp_path / "ref.json")
    data = json.loads(ref.read_text())
    log_key = next(k for k in data["values"] if k.startswith("log_median_months"))
    table = V.verify("mocksurv", posterior=path, reference=ref).set_index("quantity")
    shown = log_key[len("log_"):]
    assert shown in table.index and log_key not in table.index  # months, not log months
    assert table.loc[shown, "reference"] == pytest.approx(np.exp(data["values"][log_key]), rel=1e-3)
    data["values"][log_key] += 1.0
    for key, value, cause in [("packages", {**data["provenance"]["packages"], "pymc": "0.0"}, "package versions differ (pymc"),
                              ("model_identity", "x" * 64, "model code changed"),
                              ("config_identity", "y" * 64, "config or priors changed"),
                              ("model_data_hash", "z" * 64, "data changed")]:
        data["provenance"][key] = value
        ref.write_text(json.dumps(data))
        row = V.verify("mocksurv", posterior=path, reference=ref).set_index("quantity").loc[shown]
        assert row["status"] == "FAIL" and row["cause"].startswith(cause), row["cause"]
    del data["provenance"]
    ref.write_text(json.dumps(data))
    assert "no provenance" in V.verify("mocksurv", posterior=path, reference=ref).set_index("quantity").loc[shown, "cause"]
    assert "| seed |" in V.header("mocksurv", posterior=path, reference=ref)


def test_verify_checks_the_derived_data_byte_for_byte(tmp_path, monkeypatch):
    from trt_recovery import verify as V

    results = tmp_path / "results"
    for rel in V.DERIVED_FILES:
        (results / rel).parent.mkdir(parents=True, exist_ok=True)
        (results / rel).write_text(f"content of {rel}\n")
    monkeypatch.setattr(V.paths, "RESULTS_DIR", results)
    ref = V.write_derived_reference(target=tmp_path / "derived.json")
    assert (V.verify_derived(ref, results)["status"] == "pass").all()
    (results / V.DERIVED_FILES[0]).write_text("changed\n")
    (results / V.DERIVED_FILES[1]).unlink()
    table = V.verify_derived(ref, results).set_index("quantity")
    assert table.loc[V.DERIVED_FILES[0], "cause"].startswith("code changed")
    assert table.loc[V.DERIVED_FILES[1], "cause"].startswith("file missing")
    data = json.loads(ref.read_text())
    data["data_hash"] = "0" * 64
    ref.write_text(json.dumps(data))
    assert V.verify_derived(ref, results).set_index("quantity").loc[V.DERIVED_FILES[0], "cause"] == "data changed"


def test_a_copied_tree_is_refused_unless_chosen_explicitly(tmp_path, monkeypatch, capsys):
    """Running the package of one copy inside another copy of the project would write into the
    first: the command refuses and says how to run the copy."""
    copy = tmp_path / "copy"
    (copy / "data").mkdir(parents=True)
    (copy / "src" / "trt_recovery").mkdir(parents=True)
    (copy / "data" / "schema.yaml").write_text("tables: {}\n")
    monkeypatch.delenv("TRT_RECOVERY_ROOT", raising=False)
    monkeypatch.chdir(copy / "data")
    assert paths.enclosing_tree() == copy.resolve()
    assert cli.main(["validate"]) == 1
    err = capsys.readouterr().err
    assert str(copy.resolve()) in err and str(paths.ROOT) in err and "TRT_RECOVERY_ROOT" in err
    monkeypatch.setenv("TRT_RECOVERY_ROOT", str(copy))
    assert paths.tree_mismatch() is None  # chosen explicitly
    monkeypatch.chdir(tmp_path)  # outside any project tree: the package's own root is used
    monkeypatch.delenv("TRT_RECOVERY_ROOT")
    assert paths.tree_mismatch() is None


def test_diff_says_what_moved_and_which_rows_are_behind_it(mock_survival_fit, tmp_path):
    from trt_recovery import review
    from trt_recovery import verify as V

    path = mock_survival_fit.path
    ref = V.write_reference("mocksurv", posterior=path, target=tmp_path / "ref.json")
    table, evidence = review.diff("mocksurv", posterior=path, reference=ref)
    assert (table["status"] == "unchanged").all() and evidence == {"added": [], "removed": [], "changed": []}
    data = json.loads(ref.read_text())
    key = next(k for k in data["values"] if k.startswith("p_recovered_12m"))
    data["values"][key] -= 0.2
    used = sorted(data["rows"])
    data["rows"][used[0]] = "0" * 12  # a row whose content changed
    data["rows"]["gone_row_1"] = "1" * 12  # a row that is no longer used
    del data["rows"][used[1]]  # a row added since
    ref.write_text(json.dumps(data))
    table, evidence = review.diff("mocksurv", posterior=path, reference=ref)
    row = table.set_index("quantity").loc[key]
    assert row["status"] == "moved" and row["change"] == pytest.approx(0.2, abs=0.01)
    assert evidence == {"added": [used[1]], "removed": ["gone_row_1"], "changed": [used[0]]}
    text = review.describe("mocksurv", table, evidence)
    assert "rows added: " + used[1] in text and "moved beyond Monte Carlo error" in text
    log = review.append_changelog([text], target=tmp_path / "CHANGELOG.md", today="2026-11-29")
    assert "## 2026-11-29" in log.read_text() and key in log.read_text()
