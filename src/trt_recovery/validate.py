"""Load and validate the extraction tables against the declared schema.

Every problem found is reported, not only the first, each naming the file, the row (1-based data
row; the CSV line is row + 1), the row's identifier, the column and what is wrong. Column-level
checks (types, required cells, vocabularies, patterns, bounds) are run by pandera from the schema;
checks across columns, rows and tables (foreign keys, ``events <= n``, dispersion bounds,
provenance, duplicates, conflicting rows) are written here.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from trt_recovery import paths
from trt_recovery.schema import TO_MONTHS, ColumnSpec, Schema, TableSpec, load_schema

TIME_UNITS = ("days", "weeks", "months", "years")
CONCENTRATION_UNITS = ("million/mL", "million")

#: Columns each outcome kind needs (beyond the always-required ones).
REQUIRED_BY_OUTCOME: dict[str, tuple[str, ...]] = {
    "recovered_count": ("threshold", "n", "events"),
    "cumulative_proportion": ("threshold", "value", "statistic"),
    "km_point": ("threshold", "time", "value", "statistic"),
    "time_to_recovery": ("threshold", "value", "value_unit", "statistic", "over"),
    "median_not_reached": ("threshold", "time"),
    "concentration": ("value", "value_unit", "statistic"),
    "preserved_count": ("threshold", "n", "events"),
    "preserved_proportion": ("threshold", "time", "value", "statistic"),
    "prevalence_proportion": ("threshold", "time", "value", "statistic"),
    "individual": ("threshold", "time", "n", "events"),
    "pregnancy": (),
}
#: Statistics each outcome kind may carry.
STATISTIC_BY_OUTCOME: dict[str, tuple[str, ...]] = {
    "cumulative_proportion": ("percent", "proportion"),
    "km_point": ("percent", "proportion"),
    "preserved_proportion": ("percent", "proportion"),
    "prevalence_proportion": ("percent", "proportion"),
    "pregnancy": ("percent", "proportion", "count"),
    "time_to_recovery": ("mean", "median"),
    "concentration": ("mean", "median"),
}
UNIT_BY_OUTCOME: dict[str, tuple[str, ...]] = {
    "time_to_recovery": TIME_UNITS,
    "concentration": CONCENTRATION_UNITS,
}
#: Columns that identify "the same reported quantity" for conflict detection.
CONFLICT_KEY = ("arm_id", "outcome", "threshold", "time", "time_unit", "statistic", "over", "value_unit")
CONFLICT_VALUES = ("n", "events", "value", "dispersion_type", "dispersion_value", "lower", "upper")


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the data, located precisely."""

    file: str
    row: int | None
    column: str | None
    message: str
    key: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row} (line {self.row + 1}"
            where += f", {self.key})" if self.key else ")"
        if self.column:
            where += f", column '{self.column}'"
        return f"{where}: {self.message}"


class DataValidationError(ValueError):
    """The dataset failed validation; ``problems`` lists everything found."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.row or 0, p.column or ""))
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the dataset:\n{lines}")


@dataclass
class Dataset:
    """The validated tables, typed (numbers as floats, integers as nullable Int64, empty as NA)."""

    studies: pd.DataFrame
    arms: pd.DataFrame
    outcomes: pd.DataFrame
    data_hash: str
    directory: Path
    #: the screening log (``screening.csv``), when the dataset has one
    screening: pd.DataFrame | None = None


# --------------------------------------------------------------------------------------------
# Reading


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(paths.ROOT))
    except ValueError:
        return str(path)


def _read_raw(path: Path, spec: TableSpec) -> tuple[pd.DataFrame | None, list[Problem]]:
    fname = _display_path(path)
    if not path.exists():
        return None, [Problem(fname, None, None, "file not found")]
    content = path.read_bytes()
    if b"\x00" in content:
        line = content[: content.index(b"\x00")].count(b"\n") + 1
        return None, [Problem(fname, None, None, f"contains a NUL byte (line {line} of the file): a cell would be "
                                                 "cut short; save the table again as plain UTF-8 CSV")]
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[], encoding="utf-8")
    except pd.errors.EmptyDataError:
        return None, [Problem(fname, None, None, "is empty (not even a header row)")]
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        return None, [Problem(fname, None, None, f"cannot be parsed as CSV: {exc}")]
    df = df.apply(lambda s: s.str.strip())
    problems = [
        Problem(fname, None, col, f"unexpected column (not in data/schema.yaml table '{spec.name}')")
        for col in df.columns
        if col not in spec.columns
    ]
    problems += [
        Problem(fname, None, col, "column missing (declared in data/schema.yaml)")
        for col in spec.columns
        if col not in df.columns
    ]
    if not any(c in spec.columns for c in df.columns):
        problems.append(Problem(fname, None, None, "no column matches data/schema.yaml: is the file comma-separated "
                                                   "(not semicolons or tabs)?"))
    if df.empty and not spec.optional:
        problems.append(Problem(fname, None, None, "has a header but no data rows"))
    for col in spec.columns:
        if col not in df.columns:
            df[col] = ""
    df.index = pd.RangeIndex(1, len(df) + 1)  # 1-based data rows
    return df, problems


# --------------------------------------------------------------------------------------------
# Column checks (pandera, built from the schema)


#: What the schema means by a number: ASCII digits, one decimal point, an optional exponent (no
#: full-width or other Unicode digits, which float() would accept, no thousands separators).
_INT_RE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_NUMBER_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)


#: Largest count the tables accept (more men than any study could hold is a typing slip; it also
#: keeps counts inside 64-bit integers).
MAX_COUNT = 100_000


def _is_int(v: str) -> bool:
    return _INT_RE.fullmatch(v) is not None and abs(int(v)) <= MAX_COUNT


def _is_number(v: str) -> bool:
    if _NUMBER_RE.fullmatch(v) is None:
        return False
    return math.isfinite(float(v))


def _element_check(fn: Callable[[str], bool], message: str) -> pa.Check:
    """A pandera element-wise check that ignores empty cells (requiredness is its own check)."""
    return pa.Check(lambda v: v == "" or fn(v), element_wise=True, error=message)


def _column_checks(col: ColumnSpec, schema: Schema) -> list[pa.Check]:
    checks: list[pa.Check] = []
    if col.required:
        checks.append(pa.Check(lambda v: v != "", element_wise=True, error="is required but empty"))
    if col.type == "integer":
        checks.append(_element_check(_is_int, f"is not an integer between -{MAX_COUNT} and {MAX_COUNT}"))
    elif col.type == "number":
        checks.append(_element_check(_is_number, "is not a number"))
    numeric = col.type in ("integer", "number")
    ok = _is_int if col.type == "integer" else _is_number
    if numeric and col.minimum is not None:
        m = col.minimum
        checks.append(_element_check(lambda v, m=m: not ok(v) or float(v) >= m, f"is below the minimum {m}"))
    if numeric and col.exclusive_minimum is not None:
        m = col.exclusive_minimum
        checks.append(_element_check(lambda v, m=m: not ok(v) or float(v) > m, f"must be greater than {m}"))
    if numeric and col.maximum is not None:
        m = col.maximum
        checks.append(_element_check(lambda v, m=m: not ok(v) or float(v) <= m, f"is above the maximum {m}"))
    if col.vocabulary:
        terms = set(schema.terms(col.vocabulary))
        shown = ", ".join(sorted(terms))
        checks.append(
            _element_check(lambda v, t=terms: v in t, f"is not in vocabulary '{col.vocabulary}' ({shown})")
        )
    if col.pattern:
        rx = re.compile(col.pattern)
        checks.append(_element_check(lambda v, rx=rx: rx.fullmatch(v) is not None, f"does not match {col.pattern}"))
    return checks


def _pandera_problems(df: pd.DataFrame, spec: TableSpec, schema: Schema, fname: str) -> list[Problem]:
    # no dtype on the columns: every cell was read as text (``read_csv(dtype=str)``), and pandera's
    # per-column dtype check cost about 40% of a validation (measured) to confirm it
    dfs = pa.DataFrameSchema(
        {name: pa.Column(checks=_column_checks(c, schema), nullable=False) for name, c in spec.columns.items()},
        strict=False,
    )
    try:
        dfs.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        problems = []
        for rec in exc.failure_cases.to_dict("records"):
            row = rec.get("index")
            row = int(row) if row is not None and not pd.isna(row) else None
            key = _key(df, spec, row)
            value = rec.get("failure_case")
            problems.append(Problem(fname, row, rec.get("column"), f"value {value!r} {rec.get('check')}", key))
        return problems
    return []


def _key(df: pd.DataFrame, spec: TableSpec, row: int | None) -> str | None:
    if row is None or row not in df.index:
        return None
    v = df.at[row, spec.primary_key]
    return f"{spec.primary_key}={v}" if v else None


# --------------------------------------------------------------------------------------------
# Typing


def _typed(df: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    out = pd.DataFrame(index=df.index)
    for name, col in spec.columns.items():
        s = df[name].replace("", pd.NA)
        if col.type == "integer":
            out[name] = pd.to_numeric(s.where(s.map(lambda v: pd.isna(v) or _is_int(v))), errors="coerce").astype(
                "Int64"
            )
        elif col.type == "number":
            out[name] = pd.to_numeric(s.where(s.map(lambda v: pd.isna(v) or _is_number(v))), errors="coerce").astype(
                float
            )
        else:
            out[name] = s.astype("string")
    return out


# --------------------------------------------------------------------------------------------
# Checks across columns, rows and tables


def _for_checks(df: pd.DataFrame | None) -> pd.DataFrame | None:
    """A copy for the checks across columns: missing text is None and missing numbers NaN, so every
    comparison is a plain bool (pandas' NA makes ``if NA != "x"`` raise)."""
    if df is None:
        return None
    out = pd.DataFrame(index=df.index)
    for c in df.columns:
        if pd.api.types.is_numeric_dtype(df[c]):
            out[c] = df[c].astype(float)
        else:
            out[c] = df[c].astype(object).where(df[c].notna(), None)
    return out


class _Collector:
    def __init__(self, fname: str, spec: TableSpec, df: pd.DataFrame):
        self.fname, self.spec, self.df = fname, spec, df
        self.problems: list[Problem] = []

    def add(self, row: int | None, column: str | None, message: str) -> None:
        self.problems.append(Problem(self.fname, row, column, message, _key(self.df, self.spec, row)))


def _present(v) -> bool:
    return v is not None and not pd.isna(v)


def _check_primary_key(c: _Collector, t: pd.DataFrame) -> None:
    pk = c.spec.primary_key
    seen: dict[str, int] = {}
    for row, v in t[pk].items():
        if not _present(v):
            continue
        if v in seen:
            c.add(row, pk, f"duplicate {pk} {v!r} (also row {seen[v]})")
        else:
            seen[v] = row


def _check_duplicate_rows(c: _Collector, t: pd.DataFrame, ignore: tuple[str, ...]) -> None:
    cols = [x for x in t.columns if x not in ignore]
    seen: dict[tuple, int] = {}
    for row, rec in t[cols].astype(object).where(t[cols].notna(), None).iterrows():
        k = tuple(rec.tolist())
        if k in seen:
            c.add(row, None, f"duplicate row: same content as row {seen[k]}")
        else:
            seen[k] = row


def _check_studies(c: _Collector, s: pd.DataFrame, arms: pd.DataFrame | None) -> None:
    _check_primary_key(c, s)
    _check_duplicate_rows(c, s, ("study_id",))
    ids = set(s["study_id"].dropna())
    for col in ("pmid", "doi"):
        seen: dict[str, int] = {}
        for row, v in s[col].items():
            if _present(v):
                if v in seen:
                    c.add(row, col, f"{col} {v} is also used by row {seen[v]} (one row per publication)")
                seen.setdefault(v, row)
    arm_studies = set(arms["study_id"].dropna()) if arms is not None else set()
    for row, r in s.iterrows():
        if not _present(r["pmid"]) and not _present(r["doi"]):
            c.add(row, "pmid", "missing provenance: a study needs a pmid or a doi")
        dup = r["duplicate_of"]
        if _present(dup):
            if dup == r["study_id"]:
                c.add(row, "duplicate_of", "a study cannot be a duplicate of itself")
            elif dup not in ids:
                c.add(row, "duplicate_of", f"refers to unknown study_id {dup!r}")
            if r["study_id"] in arm_studies:
                c.add(row, "duplicate_of", "a duplicate report must have no arms (its men are counted in the fuller report)")


#: Plausibility bounds of values by unit (times converted with schema.TO_MONTHS, as harmonisation
#: does): a time beyond 50 years, a concentration beyond 1000 million/mL or a percentage beyond
#: 100 is a typing slip, not a finding.
MAX_MONTHS = 600.0
MAX_BY_UNIT = {"million/mL": 1000.0, "million": 10000.0, "percent": 100.0, "proportion": 1.0}


def _check_plausible(c: _Collector, row: int, r: pd.Series, col: str, v, unit) -> None:
    if not _present(v) or not _present(unit):
        return
    if unit in TO_MONTHS:
        months = float(v) * TO_MONTHS[unit]
        if months > MAX_MONTHS:
            c.add(row, col, f"{v:g} {unit} is {months:.0f} months: implausible (more than {MAX_MONTHS:.0f} months)")
    elif unit in MAX_BY_UNIT and float(v) > MAX_BY_UNIT[unit]:
        c.add(row, col, f"{v:g} {unit} is implausible (more than {MAX_BY_UNIT[unit]:g})")


def _check_arms(c: _Collector, a: pd.DataFrame, studies: pd.DataFrame | None) -> None:
    _check_primary_key(c, a)
    _check_duplicate_rows(c, a, ("arm_id",))
    study_ids = set(studies["study_id"].dropna()) if studies is not None else None
    parents = {r["arm_id"]: r for _, r in a.iterrows() if _present(r["arm_id"])}
    for row, r in a.iterrows():
        sid, aid = r["study_id"], r["arm_id"]
        if study_ids is not None and _present(sid) and sid not in study_ids:
            c.add(row, "study_id", f"refers to unknown study_id {sid!r} (not in studies.csv)")
        if _present(sid) and _present(aid) and not str(aid).startswith(f"{sid}_"):
            c.add(row, "arm_id", f"must start with its study_id followed by '_' ({sid}_...)")
        _check_plausible(c, row, r, "androgen_duration_value", r["androgen_duration_value"], r["androgen_duration_unit"])
        if _present(r["androgen_duration_value"]):
            for col in ("androgen_duration_stat", "androgen_duration_unit"):
                if not _present(r[col]):
                    c.add(row, col, "required when androgen_duration_value is given")
        if _present(r["age_value"]) and not _present(r["age_stat"]):
            c.add(row, "age_stat", "required when age_value is given")
        parent = r["parent_arm_id"]
        if _present(parent):
            if parent not in parents:
                c.add(row, "parent_arm_id", f"refers to unknown arm_id {parent!r}")
            else:
                p = parents[parent]
                if p["study_id"] != sid:
                    c.add(row, "parent_arm_id", f"parent arm {parent!r} belongs to another study")
                if _present(p["parent_arm_id"]):
                    c.add(row, "parent_arm_id", f"parent arm {parent!r} is itself a subgroup (one level only)")
                if parent == aid:
                    c.add(row, "parent_arm_id", "an arm cannot be its own parent")
                if _present(p["n"]) and _present(r["n"]) and int(r["n"]) > int(p["n"]):
                    c.add(row, "n", f"subgroup n ({int(r['n'])}) exceeds its parent arm's n ({int(p['n'])})")
        other = r.get("overlaps_arm_id")
        if _present(other):
            if other not in parents:
                c.add(row, "overlaps_arm_id", f"refers to unknown arm_id {other!r}")
            elif parents[other]["study_id"] == sid:
                c.add(row, "overlaps_arm_id", "names an arm of the same study (use parent_arm_id for subgroups)")
        if r["strategy"] == "serm" and not _present(r["serm_agent"]):
            c.add(row, "serm_agent", "required for strategy 'serm' (which SERM)")
        n = r["n"]
        counted = sum(int(r[x]) for x in ("n_azoospermic", "n_severe_oligozoospermic") if _present(r[x]))
        if _present(n) and counted > int(n):
            c.add(row, "n_azoospermic", f"azoospermic + severely oligozoospermic men ({counted}) exceed n ({int(n)})")


def _check_outcomes(c: _Collector, o: pd.DataFrame, arms: pd.DataFrame | None, studies: pd.DataFrame | None) -> None:
    _check_primary_key(c, o)
    _check_duplicate_rows(c, o, ("outcome_id", "notes", "source_location", "confidence_note"))
    arm_ids = set(arms["arm_id"].dropna()) if arms is not None else None
    own_refs: dict[str, set[str]] = {}
    if arms is not None and studies is not None:
        refs_by_study = {
            r["study_id"]: {f"pmid:{r['pmid']}" if _present(r["pmid"]) else "", f"doi:{r['doi']}" if _present(r["doi"]) else ""}
            - {""}
            for _, r in studies.iterrows()
        }
        own_refs = {r["arm_id"]: refs_by_study.get(r["study_id"], set()) for _, r in arms.iterrows()}
    for row, r in o.iterrows():
        kind, aid = r["outcome"], r["arm_id"]
        if arm_ids is not None and _present(aid) and aid not in arm_ids:
            c.add(row, "arm_id", f"refers to unknown arm_id {aid!r} (not in arms.csv)")
        if _present(aid) and _present(r["outcome_id"]) and not str(r["outcome_id"]).startswith(f"{aid}_"):
            c.add(row, "outcome_id", f"must start with its arm_id followed by '_' ({aid}_...)")
        for col in REQUIRED_BY_OUTCOME.get(kind, ()):
            if not _present(r[col]):
                c.add(row, col, f"required for outcome '{kind}'")
        if _present(r["time"]) and not _present(r["time_unit"]):
            c.add(row, "time_unit", "required when time is given")
        _check_plausible(c, row, r, "time", r["time"], r["time_unit"])
        for col in ("value", "lower", "upper"):
            _check_plausible(c, row, r, col, r[col], r["value_unit"])
        if kind in ("recovered_count", "preserved_count", "cumulative_proportion") and not _present(r["time"]) and r["time_stat"] != "unspecified":
            c.add(row, "time", f"required for outcome '{kind}' (or set time_stat 'unspecified' when the source gives none)")
        if _present(r["time"]) and r["time_stat"] == "unspecified":
            c.add(row, "time_stat", "'unspecified' is for rows without a time")
        if _present(r["value"]) and not _present(r["statistic"]):
            c.add(row, "statistic", "required when value is given")
        allowed_stats = STATISTIC_BY_OUTCOME.get(kind)
        if allowed_stats and _present(r["statistic"]) and r["statistic"] not in allowed_stats:
            c.add(row, "statistic", f"{r['statistic']!r} is not a statistic of outcome '{kind}' ({', '.join(allowed_stats)})")
        allowed_units = UNIT_BY_OUTCOME.get(kind)
        if allowed_units and _present(r["value_unit"]) and r["value_unit"] not in allowed_units:
            c.add(row, "value_unit", f"{r['value_unit']!r} is not a unit of outcome '{kind}' ({', '.join(allowed_units)})")
        if kind == "pregnancy" and not _present(r["events"]) and not _present(r["value"]):
            c.add(row, "events", "a pregnancy row needs events or a percentage (value)")
        if _present(r["over"]) and kind not in ("time_to_recovery", "concentration"):
            c.add(row, "over", "only time_to_recovery and concentration rows say over whom a value is")
        if _present(r["over"]) and r["over"] == "first_recovery" and kind != "concentration":
            c.add(row, "over", "'first_recovery' describes a concentration at each man's first recovered sample")
        if kind == "individual":
            if _present(r["n"]) and int(r["n"]) != 1:
                c.add(row, "n", "an individual row is one man: n must be 1")
            if _present(r["events"]) and int(r["events"]) not in (0, 1):
                c.add(row, "events", "an individual row has events 1 (recovered) or 0 (not recovered by time)")
        n, ev, val = r["n"], r["events"], r["value"]
        if _present(n) and _present(ev) and int(ev) > int(n):
            c.add(row, "events", f"events ({int(ev)}) exceed n ({int(n)})")
        if _present(val):
            if r["statistic"] == "percent" and not 0 <= val <= 100:
                c.add(row, "value", f"percentage {val} is outside [0, 100]")
            if r["statistic"] == "proportion" and not 0 <= val <= 1:
                c.add(row, "value", f"proportion {val} is outside [0, 1]")
            if kind in ("time_to_recovery", "concentration") and val < 0:
                c.add(row, "value", f"{kind} cannot be negative ({val})")
            if kind == "time_to_recovery" and val == 0:
                c.add(row, "value", "a time to recovery must be positive")
        _check_dispersion(c, row, r)
        conf = r["confidence"]
        if conf in ("secondary", "derived") and not _present(r["confidence_note"]):
            c.add(row, "confidence_note", f"required for confidence '{conf}' (say from what)")
        refs = own_refs.get(aid)
        if refs and _present(r["source_ref"]):
            if conf == "secondary" and r["source_ref"] in refs:
                c.add(row, "source_ref", "a secondary value must name the document actually read, not the study itself")
            if conf == "primary" and r["source_ref"] not in refs:
                c.add(row, "source_ref", f"a primary value must be read in the study's own report ({', '.join(sorted(refs))})")
    _check_conflicts(c, o)


def _check_dispersion(c: _Collector, row: int, r: pd.Series) -> None:
    dt = r["dispersion_type"]
    has_dv, has_lo, has_hi = (_present(r[x]) for x in ("dispersion_value", "lower", "upper"))
    if not _present(dt):
        for col, has in (("dispersion_value", has_dv), ("lower", has_lo), ("upper", has_hi)):
            if has:
                c.add(row, "dispersion_type", f"required when {col} is given")
        return
    if dt in ("sd", "se"):
        if not has_dv:
            c.add(row, "dispersion_value", f"required for dispersion_type '{dt}'")
        if has_lo or has_hi:
            c.add(row, "lower", f"lower/upper are for intervals, not for dispersion_type '{dt}'")
        return
    if not (has_lo and has_hi):
        c.add(row, "lower" if not has_lo else "upper", f"lower and upper are required for dispersion_type '{dt}'")
        return
    lo, hi, val = r["lower"], r["upper"], r["value"]
    if lo > hi:
        c.add(row, "lower", f"lower ({lo}) is greater than upper ({hi})")
    elif _present(val) and not lo <= val <= hi:
        c.add(row, "value", f"value ({val}) lies outside its {dt} [{lo}, {hi}]")


def _check_conflicts(c: _Collector, o: pd.DataFrame) -> None:
    key = list(CONFLICT_KEY)
    filled = o[key].astype(object).where(o[key].notna(), None)
    groups: dict[tuple, list[int]] = {}
    for row, rec in filled.iterrows():
        groups.setdefault(tuple(rec.tolist()), []).append(row)
    for rows in groups.values():
        if len(rows) < 2:
            continue
        first = rows[0]
        vals0 = o.loc[first, list(CONFLICT_VALUES)]
        for row in rows[1:]:
            vals = o.loc[row, list(CONFLICT_VALUES)]
            differs = [
                col
                for col in CONFLICT_VALUES
                if not ((pd.isna(vals0[col]) and pd.isna(vals[col])) or (vals0[col] == vals[col]))
            ]
            if differs:
                c.add(
                    row,
                    differs[0],
                    f"conflicts with row {first}: same arm, outcome, threshold, time and statistic but different "
                    f"{', '.join(differs)}",
                )


# --------------------------------------------------------------------------------------------
# Entry points


def data_hash(directory: Path = paths.DATA_DIR, schema_file: Path = paths.SCHEMA_FILE) -> str:
    """SHA-256 over the schema and the extraction tables that models read (byte content).

    Optional tables (the screening log) feed reports such as the PRISMA flow, never a model, so
    editing them does not make a fit stale."""
    schema = load_schema(schema_file)
    h = hashlib.sha256()
    for f in [schema_file] + [directory / t.file for t in schema.tables.values() if not t.optional]:
        h.update(f.name.encode())
        h.update(f.read_bytes() if f.exists() else b"<missing>")
    return h.hexdigest()


def _check_screening(c: _Collector, sc: pd.DataFrame, studies: pd.DataFrame | None) -> None:
    """The screening log agrees with the studies table: it is the basis of the PRISMA flow."""
    _check_primary_key(c, sc)
    ids = set(studies["study_id"].dropna()) if studies is not None else set()
    for row, r in sc.iterrows():
        decision, category, study = r["decision"], r["reason_category"], r["study_id"]
        if decision == "excluded" and not _present(category):
            c.add(row, "reason_category", "an excluded record needs a reason_category (the PRISMA reason group)")
        if decision != "excluded" and _present(category):
            c.add(row, "reason_category", f"only excluded records have a reason_category (decision is {decision!r})")
        if decision in ("included", "duplicate"):
            if not _present(study):
                c.add(row, "study_id", f"a record with decision {decision!r} must name its study_id")
            elif studies is not None and study not in ids:
                c.add(row, "study_id", f"unknown study_id {study!r} (not in studies.csv)")
    if studies is None:
        return
    included = set(sc.loc[sc["decision"] == "included", "study_id"].dropna())
    primary = studies.loc[~studies["duplicate_of"].map(_present), "study_id"]
    for sid in primary:
        if sid not in included:
            c.add(None, "study_id", f"study {sid!r} of studies.csv has no 'included' record in the screening log")


def check_dataset(
    directory: Path = paths.DATA_DIR, schema_file: Path = paths.SCHEMA_FILE
) -> tuple[Dataset | None, list[Problem]]:
    """Validate the tables in ``directory``; return the typed dataset (or None) and every problem."""
    schema = load_schema(schema_file)
    raw: dict[str, pd.DataFrame | None] = {}
    typed: dict[str, pd.DataFrame | None] = {}
    problems: list[Problem] = []
    fnames: dict[str, str] = {}
    for name, spec in schema.tables.items():
        path = Path(directory) / spec.file
        fnames[name] = _display_path(path)
        if spec.optional and not path.exists():
            raw[name] = typed[name] = None
            continue
        df, probs = _read_raw(path, spec)
        problems += probs
        raw[name] = df
        if df is not None:
            problems += _pandera_problems(df, spec, schema, fnames[name])
            typed[name] = _typed(df, spec)
        else:
            typed[name] = None
    s, a, o = (_for_checks(typed[k]) for k in ("studies", "arms", "outcomes"))
    sc = _for_checks(typed.get("screening"))
    checks = (
        ("studies", lambda col: _check_studies(col, s, a)),
        ("arms", lambda col: _check_arms(col, a, s)),
        ("outcomes", lambda col: _check_outcomes(col, o, a, s)),
        ("screening", lambda col: _check_screening(col, sc, s)),
    )
    for name, fn in checks:
        if typed[name] is None:
            continue
        col = _Collector(fnames[name], schema.tables[name], raw[name])
        try:
            fn(col)
        except (TypeError, ValueError, KeyError) as exc:
            if not problems:  # clean cells and still a crash: a bug, keep its traceback
                raise
            col.add(None, None, f"checks across rows and tables not run on this table until the problems above "
                                f"are fixed ({type(exc).__name__})")
        problems += col.problems
    problems = sorted(set(problems), key=lambda p: (p.file, p.row or 0, p.column or "", p.message))
    if problems:
        return None, problems
    return Dataset(studies=typed["studies"], arms=typed["arms"], outcomes=typed["outcomes"], data_hash=data_hash(Path(directory), schema_file),
                   directory=Path(directory), screening=typed.get("screening")), []


def load_dataset(directory: Path = paths.DATA_DIR, schema_file: Path = paths.SCHEMA_FILE) -> Dataset:
    """Validate and return the dataset; raise :class:`DataValidationError` listing every problem."""
    ds, problems = check_dataset(directory, schema_file)
    if problems:
        raise DataValidationError(problems)
    assert ds is not None
    return ds
