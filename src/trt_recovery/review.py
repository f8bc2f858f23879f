"""Living review: what moved since the committed reference, and which rows are behind it.

``trt-recovery diff`` compares every headline number of each analysis with its committed
reference (``analysis/reference/<analysis>.json``, written by ``trt-recovery verify
--write-reference``): the value then and now on the scale users read, the change, and whether it
moved beyond Monte Carlo error (the tolerance of :mod:`trt_recovery.verify`). It also lists the
rows the model uses that were added, removed or changed since the reference (each reference
records a short hash of every used row), so a reviewer sees which data a moved number rests on.
``--changelog`` appends a dated entry to ``analysis/CHANGELOG.md``; ``make review`` runs
validate, refits what changed, and diffs with the changelog.

``--attribute`` says which study is behind a move: each study with a used row added or changed
since the reference is left out in turn and the analysis refitted (the leave-one-study-out
machinery of :mod:`trt_recovery.loso`, through Dask, same config and seed); the study's
contribution to a headline number is the number now minus the number without it. With one new
study this is exactly what it changed; with several, contributions need not add up (the model is
not linear in its data), and the table says so. Rows removed since the reference cannot be
attributed this way (their study is no longer in the data): they are listed, not refitted.
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


def studies_behind(fit, evidence: dict) -> dict[str, list[str]]:
    """Study -> its used rows that were added or changed since the reference."""
    if "note" in evidence:
        return {}
    rows = set(evidence["added"]) | set(evidence["changed"])
    used = fit.used[fit.used["outcome_id"].astype(str).isin(rows)]
    out: dict[str, list[str]] = {}
    for sid, oid in zip(used["study_id"], used["outcome_id"].astype(str), strict=True):
        out.setdefault(str(sid), []).append(oid)
    return out


def attribute(name: str, evidence: dict, *, posterior: str | Path | None = None, outcomes: pd.DataFrame | None = None,
              config=None, sampler_overrides: dict | None = None, scheduler: str | None = None,
              n_workers: int | None = None) -> pd.DataFrame:
    """Contribution of each study with added or changed rows to every headline number: the number
    now minus the number refitted without that study, on the scale users read (empty table when no
    study has added or changed rows)."""
    from trt_recovery.config import load_config
    from trt_recovery.loso import leave_one_study_out
    from trt_recovery.posterior import load_fit
    from trt_recovery.verify import as_read

    fit = load_fit(posterior or name)
    behind = studies_behind(fit, evidence)
    columns = ["analysis", "study", "rows", "quantity", "now", "without_study", "contribution", "checks_passed", "note"]
    if not behind:
        return pd.DataFrame(columns=columns)
    config = config or load_config(paths.analysis_config(name))
    table = leave_one_study_out(config, outcomes=outcomes, full=fit, sampler_overrides=sampler_overrides,
                                scheduler=scheduler, n_workers=n_workers, studies=sorted(behind))
    rows = []
    for _, r in table.iterrows():
        label, now = as_read(r["quantity"], r["full_median"])
        _, without = as_read(r["quantity"], r["loso_median"])
        note = r["note"] + (" Several studies changed: contributions need not add up." if len(behind) > 1 else "")
        rows.append({"analysis": name, "study": r["dropped_study"], "rows": ", ".join(behind[r["dropped_study"]]),
                     "quantity": label, "now": now, "without_study": without, "contribution": now - without,
                     "checks_passed": bool(r["checks_passed"]), "note": note.strip()})
    return pd.DataFrame(rows, columns=columns)


def describe(name: str, table: pd.DataFrame, evidence: dict, attribution: pd.DataFrame | None = None) -> str:
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
    if attribution is not None:
        lines.append("")
        if attribution.empty:
            lines.append("Attribution: no study has rows added or changed since the reference.")
        else:
            lines.append("Which study is behind it (each study with added or changed rows left out and refitted; "
                         "contribution = now - without the study):")
            lines.append("")
            lines.append(attribution.drop(columns=["analysis"]).round(4).to_markdown(index=False))
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
