"""Write a table in every form users need: CSV, Markdown and LaTeX."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from trt_recovery import paths


#: First characters that make a spreadsheet read a cell as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot run as spreadsheet formulas: a text cell starting with
    ``= + - @`` (or a tab or carriage return) gets a leading apostrophe. Numbers are untouched
    (a negative number is a number, not text)."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].map(lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v)
    return out


def write_table(df: pd.DataFrame, stem: str, directory: Path | None = None, float_format: str = "{:.3g}") -> list[Path]:
    """Write ``df`` as ``<stem>.csv``, ``<stem>.md`` and ``<stem>.tex``; return the paths."""
    directory = directory or paths.TABLES_DIR
    directory.mkdir(parents=True, exist_ok=True)
    out = [directory / f"{stem}.{ext}" for ext in ("csv", "md", "tex")]
    shown = df.copy()
    for c in shown.columns:
        if pd.api.types.is_float_dtype(shown[c]):
            shown[c] = shown[c].map(lambda v: "" if pd.isna(v) else float_format.format(v))
    texts = [spreadsheet_safe(df).to_csv(index=False), shown.to_markdown(index=False) + "\n",
             shown.to_latex(index=False, escape=True)]
    for target, text in zip(out, texts, strict=True):  # each written whole, then renamed into place
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    return out
