"""Living review: what moved since the committed reference, and which rows are behind it.

``trt-recovery diff`` compares every headline number of each analysis with its committed
reference (``analysis/reference/<analysis>.json``, written by ``trt-recovery verify
--write-reference``): the value then and now on the scale users read, the change, and whether it
moved beyond Monte Carlo error (the tolerance of :mod:`trt_recovery.verify`). It also lists the
rows the model uses that were added, removed or changed since the reference (each reference
records a short hash of every used row), so a reviewer sees which data a moved number rests on.
``--changelog`` appends a dated entry to ``analysis/CHANGELOG.md``; ``make review`` runs
validate, refits what changed, and diffs with the changelog.

Not done here: attributing a change to single studies (leave-one-study-in refits); ``make loso``
gives the influence of each study on the current numbers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from trt_recovery import paths

CHANGELOG = paths.ANALYSIS_DIR / "CHANGELOG.md"


def row_hashes(used: pd.DataFrame) -> dict[str, str]:
    """A short hash of each used row (every column the model saw), keyed by outcome_id."""
    out = {}
    for _, r in used.iterrows():
        text = r.drop(labels=[c for c in r.index if c.startswith("_")]).to_json(default_handler=str)
        out[str(r["outcome_id"])] = hashlib.sha256(text.encode()).hexdigest()[:12]
    return out


def diff(name: str, posterior: str | Path | None = None, reference: Path | None = None) -> tuple[pd.DataFrame, dict]:
    """Headline numbers against the reference, and the rows added, removed or changed since."""
    from trt_recovery.posterior import load_fit
    from trt_recovery.verify import as_read, headline, reference_path, tolerance

    ref = json.loads((reference or reference_path(name)).read_text(encoding="utf-8"))
    source = posterior or name
    fit = load_fit(source)
    now = headline(source).set_index("quantity")
    rows = []
    for q in sorted(set(ref["values"]) | set(now.index), key=lambda k: (k not in ref["values"], k)):
        then_v = ref["values"].get(q, np.nan)
        now_v = now["value"].get(q, np.nan)
        tol = tolerance(now["mcse"].get(q, 0.0), ref.get("mcse", {}).get(q, 0.0))
        label, then_r = as_read(q, then_v)
        _, now_r = as_read(q, now_v)
        if np.isnan(then_v) or np.isnan(now_v):
            status = "new" if np.isnan(then_v) else "gone"
        else:
            status = "moved" if abs(now_v - then_v) > tol else "unchanged"
        rows.append({"analysis": name, "quantity": label, "reference": then_r, "now": now_r,
                     "change": now_r - then_r, "status": status})
    table = pd.DataFrame(rows)
    then_rows = ref.get("rows")
    now_rows = row_hashes(fit.used)
    if then_rows is None:
        evidence = {"note": "the reference records no rows (written before references kept them)"}
    else:
        evidence = {"added": sorted(set(now_rows) - set(then_rows)), "removed": sorted(set(then_rows) - set(now_rows)),
                    "changed": sorted(k for k in set(now_rows) & set(then_rows) if now_rows[k] != then_rows[k])}
    return table, evidence


def describe(name: str, table: pd.DataFrame, evidence: dict) -> str:
    """The diff of one analysis in Markdown (what the terminal and the changelog show)."""
    moved = table[table["status"] != "unchanged"]
    lines = [f"### {name}", ""]
    if "note" in evidence:
        lines.append(f"Rows: {evidence['note']}.")
    else:
        for k in ("added", "removed", "changed"):
            v = evidence[k]
            lines.append(f"- rows {k}: {', '.join(v) if v else 'none'}")
    lines.append("")
    if moved.empty:
        lines.append(f"All {len(table)} headline numbers are within Monte Carlo error of the reference.")
    else:
        lines.append(f"{len(moved)} of {len(table)} headline numbers moved beyond Monte Carlo error:")
        lines.append("")
        lines.append(moved.round(4).to_markdown(index=False))
    return "\n".join(lines)


def append_changelog(entries: list[str], target: Path | None = None, today: str | None = None) -> Path:
    """Append a dated entry (one block per analysis) to the estimates changelog."""
    target = target or CHANGELOG
    if not target.exists():
        target.write_text("# Estimates changelog\n\nWhat moved in the headline numbers, and the rows behind it, each time "
                          "`make review` ran (newest last). The reference a change is measured from is the one "
                          "committed in `analysis/reference/`.\n", encoding="utf-8")
    day = today or dt.date.today().isoformat()
    with target.open("a", encoding="utf-8") as f:
        f.write(f"\n## {day}\n\n" + "\n\n".join(entries) + "\n")
    return target
