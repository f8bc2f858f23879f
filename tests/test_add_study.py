"""``trt-recovery add-study``: a real study of the dataset (Samplaski 2014), taken out of a copy of the
data and added back from its identifier and column=value pairs, comes back row for row; bad
input is refused before anything is written."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from trt_recovery import paths
from trt_recovery.cli import main

STUDY, REF = "samplaski2014", "pmid:24094422"
FILES = {"studies": "studies.csv", "arms": "arms.csv", "outcomes": "outcomes.csv", "screening": "screening.csv"}


def _rows(d: Path, table: str) -> list[dict[str, str]]:
    with open(d / FILES[table], encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _without_study(tmp_path: Path) -> tuple[Path, dict[str, list[dict[str, str]]]]:
    d = tmp_path / "data"
    shutil.copytree(paths.DATA_DIR, d)
    taken = {}
    keep = {"studies": lambda r: r["study_id"] != STUDY, "arms": lambda r: r["study_id"] != STUDY,
            "outcomes": lambda r: not r["arm_id"].startswith(STUDY + "_"),
            "screening": lambda r: r["study_id"] != STUDY}
    for table, ok in keep.items():
        rows = _rows(d, table)
        taken[table] = [r for r in rows if not ok(r)]
        with open(d / FILES[table], "w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
            w.writeheader()
            w.writerows(r for r in rows if ok(r))
    return d, taken


def _pairs(row: dict[str, str], skip: tuple[str, ...]) -> list[str]:
    return [f"{k}={v}" for k, v in row.items() if v != "" and k not in skip]


def test_a_real_study_is_added_back_row_for_row(tmp_path, capsys):
    d, taken = _without_study(tmp_path)
    included = [r for r in taken["screening"] if r["decision"] == "included"]
    assert len(taken["studies"]) == 1 and len(taken["arms"]) == 1 and len(taken["outcomes"]) == 1 and len(included) == 1
    arm, out = taken["arms"][0], taken["outcomes"][0]
    suffix = arm["arm_id"].removeprefix(STUDY + "_")
    argv = (["add-study", STUDY, "--pmid", "24094422", "--data-dir", str(d),
             "--study", *_pairs(taken["studies"][0], ("study_id", "pmid", "url")),
             "--arm", suffix, *_pairs(arm, ("arm_id", "study_id", "source_ref")),
             "--outcome", suffix, *_pairs(out, ("outcome_id", "arm_id", "source_ref")),
             "--screening", *_pairs(included[0], ("record", "population", "decision", "study_id"))])
    assert main(argv) == 0, capsys.readouterr().err
    assert "make review" in capsys.readouterr().out
    for table in ("studies", "arms", "outcomes"):
        back = [r for r in _rows(d, table) if STUDY in (r.get("study_id"), r.get("arm_id", "").rsplit("_", 1)[0])]
        assert back == taken[table], table
    assert [r for r in _rows(d, "screening") if r["study_id"] == STUDY] == included


def test_invalid_rows_are_not_written(tmp_path, capsys):
    d, taken = _without_study(tmp_path)
    before = {t: (d / f).read_bytes() for t, f in FILES.items()}
    argv = ["add-study", STUDY, "--pmid", "24094422", "--data-dir", str(d),
            "--study", *_pairs(taken["studies"][0], ("study_id", "pmid", "url")),
            "--arm", "all", "strategy=not_a_strategy", "n=59", "arm_label=x", "source_location=abstract",
            "--screening", "reason=r", "round=1"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "NOT ADDED" in err and "not_a_strategy" in err and "arms.csv" in err
    assert {t: (d / f).read_bytes() for t, f in FILES.items()} == before


STUDY_ARGS = ["--study", "first_author=S", "year=2014", "title=t", "journal=j", "design=case_series", "population=trt",
              "source_read=abstract"]


@pytest.mark.parametrize("argv, message", [
    (STUDY_ARGS + ["--arm", "all", "colour=red"], "unknown column(s) colour of arms.csv"),
    (STUDY_ARGS + ["--outcome", "nope", "outcome=recovered_count"], "no --arm nope"),
    (["--study", "year"], "is not column=value"),
    (["--study", "year=2014"], "required column(s) first_author, title"),
])
def test_bad_arguments_are_named(tmp_path, capsys, argv, message):
    d, _ = _without_study(tmp_path)
    assert main(["add-study", STUDY, "--pmid", "24094422", "--data-dir", str(d), *argv]) == 1
    assert message in capsys.readouterr().err


def test_an_existing_study_is_refused(capsys):
    assert main(["add-study", STUDY, "--pmid", "24094422", "--dry-run", *STUDY_ARGS, "--screening", "reason=r",
                 "round=1"]) == 1
    assert "already in" in capsys.readouterr().err
