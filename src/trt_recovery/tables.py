"""Write a table in every form users need: CSV, Markdown and LaTeX.

The CSV keeps the machine names of the columns (for code that reads it back). The Markdown and
LaTeX copies are for people: headers in words (:func:`human_header`), a code column dropped when
its ``<column>_label`` twin holds the same thing in words, and in LaTeX a caption and a label
(``tab:<stem>``) from :data:`CAPTIONS`.
"""

from __future__ import annotations

from pathlib import Path

import re

import pandas as pd

from trt_recovery import paths

#: Words for the tokens of column names (anything else: underscores become spaces).
TOKENS = {"n": "n", "p": "P", "sd": "SD", "ci": "CI", "crI": "CrI", "mcse": "MCSE", "ess": "ESS", "rhat": "R-hat",
          "trt": "TRT", "aas": "AAS", "hh": "HH", "loso": "leave-one-study-out", "ppc": "posterior predictive",
          "pnever": "P(never)", "hcg": "hCG", "id": "identifier", "conc": "concentration"}
#: Whole column names whose words are not the sum of their tokens.
HEADERS = {"p_never": "P(never recovers)", "p_better": "P(better)", "inside_95": "Inside 95% interval",
           "evidence_flag": "How much the data moved it", "n": "Men (n)", "events": "Events",
           "kept_sperm": "Kept sperm", "recovered": "Recovered"}
#: LaTeX captions by table stem (a ``{name}`` part stands for the analysis); others get their stem in words.
CAPTIONS = {
    "{name}_pooled": "Pooled estimates per strategy and population (posterior median, 95\\% credible interval for an "
                     "average study, 95\\% prediction interval for a new study) with the evidence behind each.",
    "{name}_observed": "Observed arm-level data used by the model (exact 95\\% confidence intervals).",
    "{name}_contrasts": "Each strategy against the comparator (difference in rates and odds ratio, average study).",
    "{name}_contrasts_vs_none": "Each strategy against spontaneous recovery (difference in P(recovered), average study).",
    "{name}_exclusions": "Every outcome row not used by the model, with the reason.",
    "{name}_main_table": "Time to recovery per strategy: median months, P(recovered by 12 months), P(never), "
                         "evidence behind each and how far the data moved it.",
    "{name}_assumptions": "Rows that enter the model only under a stated assumption.",
    "summary_of_findings": "Summary of findings with GRADE-style certainty of evidence per outcome, target population "
                           "and strategy.",
    "prisma_flow": "PRISMA 2020 flow of records and studies.",
    "evidence_map": "Evidence map: studies, men and rows per strategy and population, and the rows each analysis uses.",
}


def human_header(column: str) -> str:
    """A column name in words: ``pooled_rate_lower95`` -> ``Pooled rate, lower 95%``."""
    if column in HEADERS:
        return HEADERS[column]
    m = re.fullmatch(r"(.*?)_?(lower|upper)(95)?", column)
    if m and m.group(1):
        return f"{human_header(m.group(1))}, {m.group(2)} 95%"
    if column.endswith("_median") and len(column) > len("_median"):
        return f"{human_header(column[: -len('_median')])} (median)"
    if column.startswith("p_") and len(column) > 2:
        inner = human_header(column[2:])
        inner = re.sub(r"(\w+) (\d+) months", r"\1 by \2 months", inner)
        return f"P({inner[:1].lower() + inner[1:]})"
    words = [TOKENS.get(t, t) for t in column.split("_") if t]
    text = " ".join(words)
    text = re.sub(r"\b(\d+)m\b", r"\1 months", text)
    return text[:1].upper() + text[1:] if text else column


def caption_for(stem: str) -> str:
    """The LaTeX caption of a table: from :data:`CAPTIONS` (``{name}`` matches an analysis name)."""
    for pattern, caption in CAPTIONS.items():
        if re.fullmatch(re.escape(pattern).replace(re.escape("{name}"), r"[a-z0-9_]+"), stem):
            return caption
    return human_header(stem) + "."


def for_people(df: pd.DataFrame) -> pd.DataFrame:
    """Columns for the Markdown and LaTeX copies: code columns with a ``_label`` twin dropped, the
    twin renamed, every header in words."""
    out = df.copy()
    for c in list(out.columns):
        if c.endswith("_label") and c[: -len("_label")] in out.columns:
            out = out.drop(columns=c[: -len("_label")]).rename(columns={c: c[: -len("_label")]})
    return out.rename(columns={c: human_header(c) for c in out.columns})


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
    people = for_people(shown)
    texts = [spreadsheet_safe(df).to_csv(index=False), people.to_markdown(index=False) + "\n",
             people.to_latex(index=False, escape=True, caption=caption_for(stem), label=f"tab:{stem}")]
    for target, text in zip(out, texts, strict=True):  # each written whole, then renamed into place
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    return out
