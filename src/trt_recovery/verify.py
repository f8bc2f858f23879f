"""Reproduction check: headline numbers against small committed reference files.

``make verify`` (``trt-recovery verify``) refits any analysis whose inputs changed (through make),
recomputes each headline number from the posterior draws, and compares it with
``analysis/reference/<analysis>.json``. A number passes when it lies within four Monte Carlo
standard errors of the reference (MCSE = posterior SD / sqrt(minimum bulk ESS of the fit), a
conservative bound for means and medians), with a floor of 0.005 on the reported scale. The
table printed is what a reviewer reads; the exit status is non-zero when anything fails.
``trt-recovery verify --write-reference`` rewrites the references (maintainers only, after an
intended change, in its own reviewed commit).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from trt_recovery import paths
from trt_recovery.posterior import load_fit

REFERENCE_DIR = paths.ANALYSIS_DIR / "reference"
N_MCSE = 4.0
FLOOR = 0.005


def headline(name_or_path: str | Path) -> pd.DataFrame:
    """Each headline number of a fit (posterior median) with its Monte Carlo standard error."""
    fit = load_fit(name_or_path)
    return _headline(str(fit.path), fit.tree.attrs["sha256"]).copy()


@lru_cache(maxsize=16)
def _headline(path: str, checksum: str) -> pd.DataFrame:
    """Headline numbers of the posterior at ``path`` with draws ``checksum`` (computed once per process)."""
    fit = load_fit(path)
    draws = fit.spec.headline(fit)
    ess = max(float(fit.convergence["ess_bulk_min"]), 1.0)
    rows = [{"quantity": k, "value": float(np.median(v)), "mcse": float(np.std(v) / np.sqrt(ess))}
            for k, v in draws.items()]
    return pd.DataFrame(rows, columns=["quantity", "value", "mcse"])


def reference_path(name: str) -> Path:
    return REFERENCE_DIR / f"{name}.json"


#: The README's main figure: a small committed copy, rewritten with the references (its PNG text
#: chunk records the data hash, and a test keeps it in step with the data like the JSON files).
README_FIGURE = REFERENCE_DIR / "survival_curves.png"


def write_readme_figure(posterior: str | Path = "survival", target: Path | None = None) -> Path:
    """Render the main recovery-curve figure for the README, stamped with its data hash."""
    import matplotlib.pyplot as plt

    from trt_recovery.survival.report import curves_figure

    fit = load_fit(posterior)
    fig = curves_figure(fit)
    out = target or README_FIGURE
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, metadata={"data_hash": fit.data_hash, "analysis": fit.analysis,
                                       "git_commit": str(fit.tree.attrs.get("git_commit", ""))})
    plt.close(fig)
    return out


def write_reference(name: str, posterior: str | Path | None = None, target: Path | None = None) -> Path:
    source = posterior or name
    h = headline(source)
    fit = load_fit(source)
    payload = {"analysis": name, "seed": fit.seed, "data_hash": fit.data_hash,
               "values": {r.quantity: round(r.value, 6) for r in h.itertuples()},
               "mcse": {r.quantity: round(r.mcse, 6) for r in h.itertuples()}}
    p = target or reference_path(name)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return p


def verify(name: str, posterior: str | Path | None = None, reference: Path | None = None) -> pd.DataFrame:
    ref_path = reference or reference_path(name)
    try:
        ref = json.loads(ref_path.read_text(encoding="utf-8"))
        if not isinstance(ref, dict) or not isinstance(ref.get("values"), dict):
            raise ValueError("no 'values' mapping")
    except (ValueError, UnicodeDecodeError) as exc:
        from trt_recovery.errors import BadInputError

        raise BadInputError(f"{ref_path}: not a usable reference file ({exc}); restore it from git "
                            "(`git checkout -- analysis/reference`) or rewrite it with `trt-recovery verify "
                            "--write-reference`") from None
    source = posterior or name
    fit = load_fit(source)
    h = headline(source).set_index("quantity")
    rows = []
    for q, ref_value in ref["values"].items():
        if q not in h.index:
            rows.append({"analysis": name, "quantity": q, "reference": ref_value, "reproduced": np.nan,
                         "tolerance": np.nan, "status": "FAIL (missing)"})
            continue
        mcse = np.hypot(h.loc[q, "mcse"], ref["mcse"].get(q, 0.0))
        tol = max(N_MCSE * mcse, FLOOR)
        value = h.loc[q, "value"]
        rows.append({"analysis": name, "quantity": q, "reference": ref_value, "reproduced": round(value, 6),
                     "tolerance": round(tol, 6), "status": "pass" if abs(value - ref_value) <= tol else "FAIL"})
    if ref["data_hash"] != fit.data_hash:
        rows.append({"analysis": name, "quantity": "data_hash", "reference": ref["data_hash"][:12],
                     "reproduced": fit.data_hash[:12], "tolerance": np.nan,
                     "status": "FAIL (data changed: references are stale)"})
    return pd.DataFrame(rows)
