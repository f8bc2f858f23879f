"""``trt-recovery add-study``: the rows of a new study (studies, arms, outcomes, and its "included"
record in the screening log) from its identifier and ``column=value`` pairs, validated with the
whole dataset before anything is written.

Identifiers and keys follow the data conventions (``data/README.md``): the study's ``study_id``; an
arm ``<study_id>_<suffix>``; an outcome ``<arm_id>_<k>`` (the next free k). ``source_ref`` defaults to
``pmid:<PMID>`` (else ``doi:<DOI>``) and a study's ``url`` to its PubMed page. Every other cell is
what the user gives: nothing is looked up or guessed (the numbers come from the source the user
read). A required column left out is asked for at a terminal; otherwise the command stops and
names it. The rows are appended to copies of the tables, the copies are validated together
(:func:`trt_recovery.validate.check_dataset`, every problem with file, row and column), and only a
valid dataset replaces the tables; ``--dry-run`` shows the rows and validates without writing.
"""

from __future__ import annotations

import csv
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from trt_recovery import paths
from trt_recovery.errors import BadInputError
from trt_recovery.schema import load_schema

TABLES = ("studies", "arms", "outcomes", "screening")


def parse_pairs(tokens: Sequence[str], where: str) -> dict[str, str]:
    """``["n=59", "strategy=none"]`` -> ``{"n": "59", "strategy": "none"}``."""
    out = {}
    for tok in tokens:
        if "=" not in tok:
            raise BadInputError(f"{where}: {tok!r} is not column=value")
        k, v = tok.split("=", 1)
        k = k.strip()
        if k in out:
            raise BadInputError(f"{where}: column {k!r} given twice")
        out[k] = v
    return out


def _check_columns(table: str, values: dict[str, str], where: str) -> None:
    cols = load_schema().tables[table].columns
    unknown = [k for k in values if k not in cols]
    if unknown:
        raise BadInputError(f"{where}: unknown column(s) {', '.join(unknown)} of {table}.csv "
                            f"(valid: {', '.join(cols)})")


def _fill_required(table: str, row: dict[str, str], where: str, ask: Callable[[str], str] | None) -> None:
    missing = [c.name for c in load_schema().tables[table].columns.values() if c.required and not row.get(c.name)]
    for name in missing:
        if ask is None:
            continue
        desc = load_schema().tables[table].columns[name].description
        row[name] = ask(f"{where}: {name} ({desc}): ").strip()
    still = [c for c in missing if not row.get(c)]
    if still:
        raise BadInputError(f"{where}: required column(s) {', '.join(still)} of {table}.csv not given "
                            f"(add {still[0]}=... )")


def build_rows(study_id: str, *, pmid: str | None, doi: str | None, study: dict[str, str],
               arms: Sequence[tuple[str, dict[str, str]]], outcomes: Sequence[tuple[str, dict[str, str]]],
               screening: dict[str, str] | None = None,
               ask: Callable[[str], str] | None = None) -> dict[str, list[dict[str, str]]]:
    """The new rows of each table, with identifiers and defaults filled in (see the module docstring)."""
    if not (pmid or doi):
        raise BadInputError("a study needs its identifier: --pmid or --doi")
    ref = f"pmid:{pmid}" if pmid else f"doi:{doi}"
    _check_columns("studies", study, "--study")
    s = {"study_id": study_id, "pmid": pmid or "", "doi": doi or "",
         "url": f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/" if pmid else f"https://doi.org/{doi}", **study}
    _fill_required("studies", s, f"study {study_id}", ask)
    arm_rows, suffixes = [], set()
    for suffix, values in arms:
        where = f"--arm {suffix}"
        _check_columns("arms", values, where)
        if suffix in suffixes:
            raise BadInputError(f"{where}: arm suffix given twice")
        suffixes.add(suffix)
        row = {"arm_id": f"{study_id}_{suffix}", "study_id": study_id, "source_ref": ref, **values}
        _fill_required("arms", row, f"arm {row['arm_id']}", ask)
        arm_rows.append(row)
    out_rows, counter = [], {}
    for suffix, values in outcomes:
        where = f"--outcome {suffix}"
        _check_columns("outcomes", values, where)
        if suffix not in suffixes:
            raise BadInputError(f"{where}: no --arm {suffix} in this command (arms: {', '.join(sorted(suffixes)) or 'none'})")
        arm_id = f"{study_id}_{suffix}"
        counter[arm_id] = counter.get(arm_id, 0) + 1
        row = {"outcome_id": f"{arm_id}_{counter[arm_id]}", "arm_id": arm_id, "source_ref": ref, **values}
        _fill_required("outcomes", row, f"outcome {row['outcome_id']}", ask)
        out_rows.append(row)
    screening = dict(screening or {})
    _check_columns("screening", screening, "--screening")
    sc = {"record": ref, "title": f"{s.get('title', '')} ({s.get('first_author', '')} {s.get('year', '')})",
          "population": s.get("population", ""), "decision": "included", "study_id": study_id, **screening}
    _fill_required("screening", sc, f"screening record {sc['record']}", ask)
    return {"studies": [s], "arms": arm_rows, "outcomes": out_rows, "screening": [sc]}


def _append(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    text = path.read_text(encoding="utf-8")
    with open(path, "a", encoding="utf-8", newline="") as fh:
        if text and not text.endswith("\n"):
            fh.write("\n")
        w = csv.writer(fh, lineterminator="\n")
        for r in rows:
            w.writerow([r.get(c, "") for c in columns])


def add_study(rows: dict[str, list[dict[str, str]]], data_dir: Path = paths.DATA_DIR, dry_run: bool = False):
    """Validate the dataset with ``rows`` appended; write them to ``data_dir`` unless ``dry_run``.

    Returns the list of validation problems (empty: valid; the tables were written unless
    ``dry_run``).
    """
    from trt_recovery.validate import check_dataset

    schema = load_schema()
    with open(data_dir / "studies.csv", encoding="utf-8", newline="") as fh:
        existing = {r["study_id"] for r in csv.DictReader(fh)}
    sid = rows["studies"][0]["study_id"]
    if sid in existing:
        raise BadInputError(f"study {sid!r} is already in {data_dir / 'studies.csv'}")
    with tempfile.TemporaryDirectory() as tmp:
        trial = Path(tmp) / "data"
        shutil.copytree(data_dir, trial)
        for t in TABLES:
            _append(trial / schema.tables[t].file, schema.tables[t].column_names, rows[t])
        _, problems = check_dataset(trial)
        if not problems and not dry_run:
            for t in TABLES:
                target = data_dir / schema.tables[t].file
                tmp_target = target.with_name(target.name + ".tmp")
                shutil.copyfile(trial / schema.tables[t].file, tmp_target)
                tmp_target.replace(target)
    return problems


def terminal_prompt() -> Callable[[str], str] | None:
    """Ask at a terminal; None when input is not a terminal (then a missing column is an error)."""
    return input if sys.stdin.isatty() else None
