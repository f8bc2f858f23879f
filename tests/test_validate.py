"""Validation: the real dataset passes; every malformed table is rejected with a precise message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from helpers import read, write
from trt_recovery import paths
from trt_recovery.validate import DataValidationError, check_dataset, load_dataset


def test_repository_dataset_is_valid():
    ds, problems = check_dataset(paths.DATA_DIR)
    assert problems == [], "\n".join(map(str, problems))
    assert len(ds.studies) >= 3 and len(ds.outcomes) >= 3


def test_fixture_dataset_is_valid_and_typed(data_dir):
    ds = load_dataset(data_dir)
    assert ds.arms["n"].dtype == "Int64"
    assert ds.outcomes["time"].dtype == float
    assert ds.outcomes.loc[ds.outcomes["outcome_id"] == "kohn2017_all_1", "events"].item() == 46
    assert len(ds.data_hash) == 64


def _set(table: str, row_id: str, column: str, value: str) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        df = read(d, table)
        key = df.columns[0]
        assert (df[key] == row_id).sum() == 1, f"fixture has no row {row_id}"
        df.loc[df[key] == row_id, column] = value
        write(d, table, df)

    return mutate


def _dup_row(table: str, row_id: str, new_id: str, **changes) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        df = read(d, table)
        key = df.columns[0]
        row = df[df[key] == row_id].copy()
        row[key] = new_id
        for c, v in changes.items():
            row[c] = v
        write(d, table, pd.concat([df, row], ignore_index=True))

    return mutate


def _drop_column(table: str, column: str) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        write(d, table, read(d, table).drop(columns=[column]))

    return mutate


def _add_column(table: str, column: str) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        df = read(d, table)
        df[column] = "x"
        write(d, table, df)

    return mutate


def _ragged(d: Path) -> None:
    with open(d / "outcomes.csv", "a") as fh:
        fh.write("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u,v,w,x,y,z,extra,extra2\n")


def _remove_file(d: Path) -> None:
    (d / "arms.csv").unlink()


# (case id, mutation, file, row (data row, 1-based) or None, column or None, message fragment)
CASES = [
    ("study-no-provenance", lambda d: (_set("studies", "kohn2017", "pmid", "")(d), _set("studies", "kohn2017", "doi", "")(d)),
     "studies.csv", 2, "pmid", "missing provenance"),
    ("study-year-not-integer", _set("studies", "wenker2015", "year", "20x5"), "studies.csv", 1, "year", "is not an integer"),
    ("study-bad-population", _set("studies", "wenker2015", "population", "steroid"), "studies.csv", 1, "population",
     "is not in vocabulary 'population'"),
    ("study-duplicate-id", _dup_row("studies", "kohn2017", "kohn2017", pmid="11111111", doi=""), "studies.csv", 4,
     "study_id", "duplicate study_id 'kohn2017' (also row 2)"),
    ("study-duplicate-of-unknown", _set("studies", "samplaski2014", "duplicate_of", "nobody2000"), "studies.csv", 3,
     "duplicate_of", "refers to unknown study_id 'nobody2000'"),
    ("study-duplicate-with-arms", _set("studies", "samplaski2014", "duplicate_of", "kohn2017"), "studies.csv", 3,
     "duplicate_of", "a duplicate report must have no arms"),
    ("study-unexpected-column", _add_column("studies", "impact_factor"), "studies.csv", None, "impact_factor",
     "unexpected column"),
    ("study-missing-column", _drop_column("studies", "design"), "studies.csv", None, "design", "column missing"),
    ("study-bad-pmid", _set("studies", "kohn2017", "pmid", "PMID27855957"), "studies.csv", 2, "pmid", "does not match"),
    ("arm-unknown-study", _set("arms", "kohn2017_all", "study_id", "kohn2018"), "arms.csv", 2, "study_id",
     "refers to unknown study_id 'kohn2018'"),
    ("arm-bad-strategy", _set("arms", "kohn2017_all", "strategy", "hcg_only"), "arms.csv", 2, "strategy",
     "is not in vocabulary 'strategy'"),
    ("arm-n-zero", _set("arms", "kohn2017_all", "n", "0"), "arms.csv", 2, "n", "is below the minimum 1"),
    ("arm-n-not-integer", _set("arms", "kohn2017_all", "n", "sixty"), "arms.csv", 2, "n", "is not an integer"),
    ("arm-bad-source-ref", _set("arms", "kohn2017_all", "source_ref", "PMID 27855957"), "arms.csv", 2, "source_ref",
     "does not match"),
    ("arm-duration-without-unit", _set("arms", "kohn2017_all", "androgen_duration_value", "24"), "arms.csv", 2,
     "androgen_duration_stat", "required when androgen_duration_value is given"),
    ("arm-id-not-prefixed", _set("arms", "kohn2017_all", "arm_id", "k2017_all"), "arms.csv", 2, "arm_id",
     "must start with its study_id"),
    ("arm-unknown-parent", _set("arms", "kohn2017_all", "parent_arm_id", "kohn2017_none"), "arms.csv", 2,
     "parent_arm_id", "refers to unknown arm_id 'kohn2017_none'"),
    ("arm-age-out-of-range", _set("arms", "kohn2017_all", "age_value", "140"), "arms.csv", 2, "age_value",
     "is above the maximum 90"),
    ("outcome-events-exceed-n", _set("outcomes", "kohn2017_all_1", "events", "70"), "outcomes.csv", 4, "events",
     "events (70) exceed n (66)"),
    ("outcome-percent-above-100", _set("outcomes", "samplaski2014_all_1", "value", "120"), "outcomes.csv", 5, "value",
     "percentage 120.0 is outside [0, 100]"),
    ("outcome-unknown-arm", _set("outcomes", "kohn2017_all_1", "arm_id", "kohn2017_x"), "outcomes.csv", 4, "arm_id",
     "refers to unknown arm_id 'kohn2017_x'"),
    ("outcome-bad-threshold", _set("outcomes", "kohn2017_all_1", "threshold", "7"), "outcomes.csv", 4, "threshold",
     "is not in vocabulary 'threshold'"),
    ("outcome-negative-time", _set("outcomes", "kohn2017_all_1", "time", "-3"), "outcomes.csv", 4, "time",
     "must be greater than 0"),
    ("outcome-missing-source-location", _set("outcomes", "kohn2017_all_1", "source_location", ""), "outcomes.csv", 4,
     "source_location", "is required but empty"),
    ("outcome-lower-above-upper",
     lambda d: [_set("outcomes", "wenker2015_all_2", c, v)(d) for c, v in (("dispersion_type", "range"), ("lower", "9"), ("upper", "2"))],
     "outcomes.csv", 2, "lower", "lower (9.0) is greater than upper (2.0)"),
    ("outcome-value-outside-range",
     lambda d: [_set("outcomes", "wenker2015_all_2", c, v)(d) for c, v in (("dispersion_type", "iqr"), ("lower", "5"), ("upper", "9"))],
     "outcomes.csv", 2, "value", "value (4.6) lies outside its iqr [5.0, 9.0]"),
    ("outcome-sd-without-value", _set("outcomes", "wenker2015_all_2", "dispersion_type", "sd"), "outcomes.csv", 2,
     "dispersion_value", "required for dispersion_type 'sd'"),
    ("outcome-duplicate-row", _dup_row("outcomes", "kohn2017_all_1", "kohn2017_all_9"), "outcomes.csv", 6, None,
     "duplicate row: same content as row 4"),
    ("outcome-conflicting-row", _dup_row("outcomes", "kohn2017_all_1", "kohn2017_all_9", events="40"), "outcomes.csv", 6,
     "events", "conflicts with row 4"),
    ("outcome-secondary-without-note",
     lambda d: [_set("outcomes", "kohn2017_all_1", c, v)(d) for c, v in (("confidence", "secondary"), ("source_ref", "pmid:26908067"))],
     "outcomes.csv", 4, "confidence_note", "required for confidence 'secondary'"),
    ("outcome-primary-from-other-paper", _set("outcomes", "kohn2017_all_1", "source_ref", "pmid:26908067"), "outcomes.csv",
     4, "source_ref", "a primary value must be read in the study's own report"),
    ("outcome-wrong-statistic", _set("outcomes", "wenker2015_all_2", "statistic", "percent"), "outcomes.csv", 2,
     "statistic", "is not a statistic of outcome 'time_to_recovery'"),
    ("outcome-time-without-unit", _set("outcomes", "kohn2017_all_1", "time_unit", ""), "outcomes.csv", 4, "time_unit",
     "required when time is given"),
    ("outcome-count-without-time", lambda d: [_set("outcomes", "kohn2017_all_1", c, "")(d) for c in ("time", "time_unit")],
     "outcomes.csv", 4, "time", "required for outcome 'recovered_count'"),
    ("outcome-ragged-csv", _ragged, "outcomes.csv", None, None, "cannot be parsed as CSV"),
    ("arms-file-missing", _remove_file, "arms.csv", None, None, "file not found"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_malformed_table_is_rejected_with_location(data_dir, case):
    _, mutate, fname, row, column, fragment = case
    mutate(data_dir)
    ds, problems = check_dataset(data_dir)
    assert ds is None
    hits = [p for p in problems if p.file.endswith(fname) and fragment in p.message]
    assert hits, f"no problem mentioning {fragment!r} in {fname}; got:\n" + "\n".join(map(str, problems))
    p = hits[0]
    assert p.row == row
    assert p.column == column
    text = str(p)
    assert fname in text and fragment in text
    if row is not None:
        assert f"row {row} (line {row + 1}" in text
    if column is not None:
        assert f"column '{column}'" in text


def test_all_problems_are_reported_together(data_dir):
    _set("studies", "wenker2015", "population", "steroid")(data_dir)
    _set("arms", "kohn2017_all", "n", "0")(data_dir)
    _set("outcomes", "kohn2017_all_1", "events", "70")(data_dir)
    with pytest.raises(DataValidationError) as exc:
        load_dataset(data_dir)
    msg = str(exc.value)
    assert "3 problem(s)" in msg
    for fragment in ("studies.csv, row 1", "arms.csv, row 2", "outcomes.csv, row 4"):
        assert fragment in msg


def test_message_names_row_identifier(data_dir):
    _set("outcomes", "kohn2017_all_1", "events", "70")(data_dir)
    _, problems = check_dataset(data_dir)
    assert "outcome_id=kohn2017_all_1" in str(problems[0])
