"""Write a table in every form users need: CSV, Markdown and LaTeX."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from trt_recovery import paths


def write_table(df: pd.DataFrame, stem: str, directory: Path | None = None, float_format: str = "{:.3g}") -> list[Path]:
    """Write ``df`` as ``<stem>.csv``, ``<stem>.md`` and ``<stem>.tex``; return the paths."""
    directory = directory or paths.TABLES_DIR
    directory.mkdir(parents=True, exist_ok=True)
    out = [directory / f"{stem}.{ext}" for ext in ("csv", "md", "tex")]
    df.to_csv(out[0], index=False)
    shown = df.copy()
    for c in shown.columns:
        if pd.api.types.is_float_dtype(shown[c]):
            shown[c] = shown[c].map(lambda v: "" if pd.isna(v) else float_format.format(v))
    out[1].write_text(shown.to_markdown(index=False) + "\n", encoding="utf-8")
    out[2].write_text(shown.to_latex(index=False, escape=True), encoding="utf-8")
    return out
