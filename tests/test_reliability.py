"""Bad input never crashes and never loses a value: one case per defect class, each asserting the
message a user reads (file, row, column, what is wrong), plus a fuzz of the CSV reader.

Defect classes (the cases per class are listed in each test's parameters):
1. blank required cells (crashed the cross-table checks with "boolean value of NA is ambiguous");
2. malformed CSV shapes: semicolon-delimited, trailing commas, truncated rows, header only;
3. numbers the schema does not mean: full-width digits, thousands separators, 23-digit integers;
4. bytes that cut cells short: NUL;
5. implausible values: 1e308 months, concentrations and percentages beyond their bounds;
6. spreadsheet formulas in derived CSVs;
7. command-line misuse: paths as analysis names, negative seeds.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import read, write
from trt_recovery import cli
from trt_recovery.validate import check_dataset


def _problems(d):
    ds, problems = check_dataset(d)  # must never raise on bad input
    return ds, [str(p) for p in problems]


def _edit(d, table, row, column, value):
    df = read(d, table)
    df.loc[row, column] = value
    write(d, table, df)


@pytest.mark.parametrize(("table", "column"), [("arms", "strategy"), ("outcomes", "outcome"), ("outcomes", "confidence"),
                                               ("outcomes", "arm_id"), ("studies", "design")])
def test_a_blank_required_cell_is_a_problem_not_a_crash(data_dir, table, column):
    _edit(data_dir, table, 0, column, "")
    ds, problems = _problems(data_dir)
    assert ds is None
    assert any(f"{table}.csv, row 1" in p and f"column '{column}'" in p and "required but empty" in p for p in problems)


def test_a_semicolon_delimited_export_is_named(data_dir):
    df = read(data_dir, "studies")
    (data_dir / "studies.csv").write_text(df.to_csv(index=False, sep=";"), encoding="utf-8")
    _, problems = _problems(data_dir)
    assert any("studies.csv" in p and "comma-separated" in p for p in problems)


def test_trailing_commas_and_truncated_rows(data_dir):
    text = (data_dir / "arms.csv").read_text(encoding="utf-8").splitlines()
    (data_dir / "arms.csv").write_text("\n".join([text[0] + ",", *[t + "," for t in text[1:]]]) + "\n", encoding="utf-8")
    _, problems = _problems(data_dir)
    assert any("arms.csv" in p and "unexpected column" in p for p in problems)
    lines = (data_dir / "outcomes.csv").read_text(encoding="utf-8").splitlines()
    lines[1] = ",".join(lines[1].split(",")[:3])  # the row stops after three cells
    (data_dir / "outcomes.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    ds, problems = _problems(data_dir)
    assert ds is None and any("outcomes.csv, row 1" in p for p in problems)


def test_a_header_only_table_is_not_ok(data_dir):
    header = (data_dir / "outcomes.csv").read_text(encoding="utf-8").splitlines()[0]
    (data_dir / "outcomes.csv").write_text(header + "\n", encoding="utf-8")
    ds, problems = _problems(data_dir)
    assert ds is None and any("outcomes.csv" in p and "no data rows" in p for p in problems)


@pytest.mark.parametrize(("value", "message"), [("２０", "is not an integer"), ("1,000", "is not an integer"),
                                                ("12345678901234567890123", "is not an integer"),
                                                ("٣", "is not an integer")])
def test_numbers_are_ascii_and_bounded(data_dir, value, message):
    _edit(data_dir, "arms", 0, "n", value)
    ds, problems = _problems(data_dir)
    assert ds is None and any("arms.csv, row 1" in p and "column 'n'" in p and message in p for p in problems)


def test_full_width_decimal_is_not_a_number(data_dir):
    out = read(data_dir, "outcomes")
    i = out.index[out["time"] != ""][0]
    _edit(data_dir, "outcomes", i, "time", "１２")
    _, problems = _problems(data_dir)
    assert any(f"row {i + 1}" in p and "column 'time'" in p and "is not a number" in p for p in problems)


def test_a_nul_byte_is_named_with_its_line(data_dir):
    raw = (data_dir / "studies.csv").read_bytes().replace(b"Wenker", b"Wen\x00ker", 1)
    (data_dir / "studies.csv").write_bytes(raw)
    ds, problems = _problems(data_dir)
    assert ds is None and any("studies.csv" in p and "NUL byte (line 2" in p for p in problems)


@pytest.mark.parametrize(("column", "value", "unit_col", "unit", "message"), [
    ("time", "1e308", "time_unit", "months", "implausible"),
    ("time", "80", "time_unit", "years", "960 months: implausible"),
])
def test_implausible_times_are_named(data_dir, column, value, unit_col, unit, message):
    out = read(data_dir, "outcomes")
    i = out.index[out["time"] != ""][0]
    _edit(data_dir, "outcomes", i, column, value)
    _edit(data_dir, "outcomes", i, unit_col, unit)
    _, problems = _problems(data_dir)
    assert any(f"row {i + 1}" in p and f"column '{column}'" in p and message in p for p in problems)


def test_derived_csvs_neutralise_spreadsheet_formulas(tmp_path):
    from trt_recovery.tables import write_table

    df = pd.DataFrame({"note": ["=HYPERLINK(\"http://x\")", "+1", "@SUM(A1)", "plain", "-x"], "value": [-1.5, 2, 3, 4, 5]})
    csv = write_table(df, "t", tmp_path)[0]
    back = pd.read_csv(csv)
    assert back["note"].tolist() == ["'=HYPERLINK(\"http://x\")", "'+1", "'@SUM(A1)", "plain", "'-x"]
    assert back["value"].tolist() == [-1.5, 2, 3, 4, 5]  # numbers untouched


@pytest.mark.parametrize(("argv", "message"), [
    (["report", "../../x"], "is not an analysis name"),
    (["predict", "--analysis", "../x", "--strategy", "none"], "is not an analysis name"),
])
def test_paths_are_not_analysis_names(argv, message, capsys):
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_negative_seed_is_refused_before_anything_loads(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["fit", "survival", "--seed", "-1"])
    assert exc.value.code == 2 and "a seed is between 0 and" in capsys.readouterr().err


CELL = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(column=st.sampled_from(["n", "strategy", "age_value", "androgen_duration_value", "study_id", "time_zero"]),
       value=CELL)
def test_fuzzed_cells_never_crash_and_never_vanish(data_dir, column, value):
    """Any text in any arms cell: validation either reports a problem naming that row and column, or
    accepts it and the typed table holds a value wherever the cell was not empty."""
    d = data_dir / f"fuzz{abs(hash((column, value))) % 10**8}"
    shutil.copytree(data_dir, d, ignore=shutil.ignore_patterns("fuzz*"))
    _edit(d, "arms", 0, column, value)
    ds, problems = _problems(d)
    stored = read(d, "arms").loc[0, column]
    if ds is None:
        assert problems
    elif stored.strip() != "":
        assert pd.notna(ds.arms.iloc[0][column]), f"{value!r} in {column} was accepted but lost"


def test_a_corrupt_posterior_is_moved_aside_so_make_refits_it(mock_success_fit, tmp_path, monkeypatch, capsys):
    from trt_recovery import paths

    d = tmp_path / "posteriors"
    d.mkdir()
    good, bad = d / "good.nc", d / "bad.nc"
    shutil.copyfile(mock_success_fit.path, good)
    raw = bytearray(mock_success_fit.path.read_bytes())
    bad.write_bytes(bytes(raw[: len(raw) // 2]))  # truncated
    monkeypatch.setattr(paths, "POSTERIORS_DIR", d)
    assert cli.main(["check-posteriors"]) == 0
    assert good.exists() and not bad.exists() and (d / "bad.corrupt.nc").exists()
    assert "CORRUPT posterior moved" in capsys.readouterr().err
    assert cli.main(["check-posteriors"]) == 0  # second run: the good file is skipped by its ledger entry
    assert "good.nc" in (d / ".checked.json").read_text()


def test_a_failing_notebook_leaves_no_output_at_its_target(tmp_path):
    from papermill.exceptions import PapermillExecutionError

    from trt_recovery.notebooks import execute_notebook

    src = tmp_path / "broken.py"
    src.write_text("# %%\nx = 1\n\n# %%\nraise RuntimeError('half way')\n", encoding="utf-8")
    out = tmp_path / "broken.ipynb"
    with pytest.raises(PapermillExecutionError):
        execute_notebook(src, output=out)
    assert not out.exists() and (tmp_path / "broken.failed.ipynb").exists()


def test_an_empty_file_is_named(data_dir):
    (data_dir / "arms.csv").write_text("", encoding="utf-8")
    ds, problems = _problems(data_dir)
    assert ds is None and any("arms.csv" in p and "is empty" in p for p in problems)


def test_a_broken_schema_file_is_one_line(tmp_path, capsys):
    from trt_recovery.schema import SchemaDefinitionError, load_schema

    bad = tmp_path / "schema.yaml"
    bad.write_text("tables: [unclosed\n", encoding="utf-8")
    with pytest.raises(SchemaDefinitionError, match="not valid YAML"):
        load_schema(bad)
    bad.write_text("- just a list\n", encoding="utf-8")
    with pytest.raises(SchemaDefinitionError, match="must be a mapping"):
        load_schema(bad)


def test_a_corrupt_reference_file_is_named(tmp_path, mock_success_fit):
    from trt_recovery.errors import BadInputError
    from trt_recovery.verify import verify

    ref = tmp_path / "ref.json"
    ref.write_text("{not json", encoding="utf-8")
    with pytest.raises(BadInputError, match="not a usable reference file"):
        verify("mocksucc", posterior=mock_success_fit.path, reference=ref)
