"""The declared schema of the dataset (``data/schema.yaml``), loaded once.

The schema is data: columns, types, vocabularies, bounds and descriptions. Validation
(:mod:`trt_recovery.validate`) and the generated data dictionary (:func:`data_dictionary`) both
read it, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from trt_recovery import paths

#: Months per unit of the ``time_unit`` vocabulary (a month is a twelfth of a Julian year), used by
#: harmonisation to convert times and by validation to bound them.
DAYS_PER_MONTH = 365.25 / 12
TO_MONTHS = {"days": 1 / DAYS_PER_MONTH, "weeks": 7 / DAYS_PER_MONTH, "months": 1.0, "years": 12.0}

TYPES = ("string", "integer", "number")
COLUMN_KEYS = {
    "type",
    "required",
    "vocabulary",
    "pattern",
    "minimum",
    "exclusive_minimum",
    "maximum",
    "unit",
    "description",
}


class SchemaDefinitionError(ValueError):
    """The schema file itself is malformed."""


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str
    description: str
    required: bool = False
    vocabulary: str | None = None
    pattern: str | None = None
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    unit: str | None = None


@dataclass(frozen=True)
class TableSpec:
    name: str
    file: str
    primary_key: str
    description: str
    columns: dict[str, ColumnSpec]
    foreign_keys: dict[str, str] = field(default_factory=dict)
    #: a dataset may leave this table out (e.g. the screening log of a test dataset)
    optional: bool = False

    @property
    def column_names(self) -> list[str]:
        return list(self.columns)


@dataclass(frozen=True)
class Schema:
    version: int
    vocabularies: dict[str, dict[str, str]]
    tables: dict[str, TableSpec]
    #: ordered recovery thresholds, most lenient first (``threshold_ladder`` in the schema file)
    threshold_ladder: tuple[str, ...] = ()

    def terms(self, vocabulary: str) -> list[str]:
        """The allowed terms of a controlled vocabulary."""
        return list(self.vocabularies[vocabulary])

    def threshold_rank(self, threshold: str) -> int | None:
        """Position of a threshold on the ladder (0 = most lenient), None for unordered ones."""
        return self.threshold_ladder.index(threshold) if threshold in self.threshold_ladder else None

    def unordered_thresholds(self) -> list[str]:
        """Threshold terms that are not on the ladder (each gets its own effect in the models)."""
        return [t for t in self.terms("threshold") if t not in self.threshold_ladder]


def _parse(raw: dict, source: Path) -> Schema:
    if not isinstance(raw, dict) or "tables" not in raw or "vocabularies" not in raw:
        raise SchemaDefinitionError(f"{source}: needs top-level 'vocabularies' and 'tables'")
    vocabularies = {
        name: {str(k): str(v) for k, v in terms.items()} for name, terms in raw["vocabularies"].items()
    }
    tables: dict[str, TableSpec] = {}
    for tname, t in raw["tables"].items():
        cols: dict[str, ColumnSpec] = {}
        for cname, c in t["columns"].items():
            unknown = set(c) - COLUMN_KEYS
            if unknown:
                raise SchemaDefinitionError(f"{source}: {tname}.{cname}: unknown keys {sorted(unknown)}")
            if c.get("type") not in TYPES:
                raise SchemaDefinitionError(f"{source}: {tname}.{cname}: type must be one of {TYPES}")
            if c.get("vocabulary") and c["vocabulary"] not in vocabularies:
                raise SchemaDefinitionError(
                    f"{source}: {tname}.{cname}: unknown vocabulary {c['vocabulary']!r}"
                )
            cols[cname] = ColumnSpec(name=cname, **{k: v for k, v in c.items()})
        tables[tname] = TableSpec(
            name=tname,
            file=t["file"],
            primary_key=t["primary_key"],
            description=t.get("description", ""),
            columns=cols,
            foreign_keys=dict(t.get("foreign_keys", {})),
            optional=bool(t.get("optional", False)),
        )
    ladder = tuple(str(t) for t in raw.get("threshold_ladder", []))
    unknown = [t for t in ladder if t not in vocabularies.get("threshold", {})]
    if unknown or len(set(ladder)) != len(ladder):
        raise SchemaDefinitionError(
            f"{source}: threshold_ladder must list distinct terms of the threshold vocabulary (bad: {unknown or 'duplicates'})"
        )
    return Schema(version=int(raw.get("version", 1)), vocabularies=vocabularies, tables=tables, threshold_ladder=ladder)


@lru_cache(maxsize=8)
def load_schema(path: Path = paths.SCHEMA_FILE) -> Schema:
    """Load and check the schema file."""
    try:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise SchemaDefinitionError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict) or "tables" not in raw or "vocabularies" not in raw:
        raise SchemaDefinitionError(f"{path}: must be a mapping with 'vocabularies' and 'tables'")
    try:
        return _parse(raw, path)
    except (KeyError, TypeError, AttributeError) as exc:
        raise SchemaDefinitionError(f"{path}: malformed schema ({type(exc).__name__}: {exc})") from None


def data_dictionary(schema: Schema | None = None) -> str:
    """The data dictionary (Markdown), generated from the schema.

    ``data/DICTIONARY.md`` is this text; a test checks that the committed file is current.
    """
    schema = schema or load_schema()
    out = [
        "# Data dictionary",
        "",
        "Generated from `data/schema.yaml` by `make dictionary` (`trt-recovery dictionary`). Do not edit by hand.",
        "",
    ]
    for t in schema.tables.values():
        out += [f"## `{t.file}`", "", t.description, "", f"Primary key: `{t.primary_key}`."]
        if t.foreign_keys:
            fks = ", ".join(f"`{c}` -> `{ref}`" for c, ref in t.foreign_keys.items())
            out.append(f"Foreign keys: {fks}.")
        out += ["", "| column | type | required | allowed values / bounds | description |", "|---|---|---|---|---|"]
        for c in t.columns.values():
            allowed = []
            if c.vocabulary:
                allowed.append(f"vocabulary `{c.vocabulary}`")
            if c.pattern:
                allowed.append(f"pattern `{c.pattern}`")
            if c.minimum is not None:
                allowed.append(f">= {c.minimum}")
            if c.exclusive_minimum is not None:
                allowed.append(f"> {c.exclusive_minimum}")
            if c.maximum is not None:
                allowed.append(f"<= {c.maximum}")
            if c.unit:
                allowed.append(f"unit: {c.unit}")
            out.append(
                f"| `{c.name}` | {c.type} | {'yes' if c.required else ''} | {'; '.join(allowed)} | {c.description} |"
            )
        out.append("")
    if schema.threshold_ladder:
        out += [
            "## Ordered thresholds",
            "",
            "Most lenient first (a man past a stricter threshold has passed every more lenient one): "
            + " < ".join(f"`{t}`" for t in schema.threshold_ladder)
            + ". Every other threshold term is unordered; models give each its own effect.",
            "",
        ]
    out += ["## Controlled vocabularies", ""]
    for name, terms in schema.vocabularies.items():
        out += [f"### `{name}`", "", "| term | meaning |", "|---|---|"]
        out += [f"| `{k}` | {v} |" for k, v in terms.items()]
        out.append("")
    return "\n".join(out)
