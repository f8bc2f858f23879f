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
from pathlib import Path

import numpy as np
import pandas as pd

from trt_recovery import paths
from trt_recovery.fitting import load_posterior

REFERENCE_DIR = paths.ANALYSIS_DIR / "reference"
N_MCSE = 4.0
FLOOR = 0.005


def _summaries_success(dt, meta) -> dict[str, np.ndarray]:
    post = dt["posterior"]
    cells = sorted({(r["strategy"], r["population"]) for r in meta["used_rows"]})
    return {f"pooled_rate[{s},{p}]": post["cell_rate"].sel(strategy=s, population=p).values.ravel() for s, p in cells}


def _summaries_concentration(dt, meta) -> dict[str, np.ndarray]:
    post = dt["posterior"]
    used = meta["used_rows"]
    cells = sorted({(r["strategy"], r["population"]) for r in used})
    return {
        f"log_median_conc[{s},{p}]": np.log(post["median_concentration"].sel(strategy=s, population=p).values.ravel())
        for s, p in cells
    }


def _summaries_survival(dt, meta) -> dict[str, np.ndarray]:
    from trt_recovery.survival import predict as P
    from trt_recovery.survival.report import strategies_with_evidence

    out = {}
    for s in strategies_with_evidence(meta):
        prof = P.Profile(strategy=s, population="trt", threshold="any")
        out[f"p_recovered_12m[{s}]"] = P.recovered_by(dt, meta, prof, [12.0])[:, 0]
        out[f"p_never[{s}]"] = P.p_never(dt, meta, prof)
        med = P.median_time(dt, meta, prof)
        out[f"log_median_months[{s}]"] = np.log(np.where(np.isfinite(med), med, 1e4))
    return out


SUMMARISERS = {"binomial_success": _summaries_success, "lognormal_concentration": _summaries_concentration,
               **{f"survival_cure_{f}": _summaries_survival
                                                         for f in ("weibull", "lognormal", "loglogistic")}}


def headline(name_or_path: str | Path) -> pd.DataFrame:
    dt, meta = load_posterior(name_or_path)
    draws = SUMMARISERS[meta["model"]](dt, meta)
    ess = max(float(meta["convergence"]["ess_bulk_min"]), 1.0)
    rows = [{"quantity": k, "value": float(np.median(v)), "mcse": float(np.std(v) / np.sqrt(ess))}
            for k, v in draws.items()]
    return pd.DataFrame(rows)


def reference_path(name: str) -> Path:
    return REFERENCE_DIR / f"{name}.json"


#: The README's main figure: a small committed copy, rewritten with the references (its PNG text
#: chunk records the data hash, and a test keeps it in step with the data like the JSON files).
README_FIGURE = REFERENCE_DIR / "survival_curves.png"


def write_readme_figure(posterior: str | Path = "survival", target: Path | None = None) -> Path:
    """Render the main recovery-curve figure for the README, stamped with its data hash."""
    import matplotlib.pyplot as plt

    from trt_recovery.survival.report import curves_figure

    dt, meta = load_posterior(posterior)
    fig = curves_figure(dt, meta)
    out = target or README_FIGURE
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, metadata={"data_hash": meta["data_hash"], "analysis": meta["analysis"],
                                       "git_commit": meta["git_commit"]})
    plt.close(fig)
    return out


def write_reference(name: str, posterior: str | Path | None = None, target: Path | None = None) -> Path:
    source = posterior or name
    h = headline(source)
    _, meta = load_posterior(source)
    payload = {"analysis": name, "seed": meta["seed"], "data_hash": meta["data_hash"],
               "values": {r.quantity: round(r.value, 6) for r in h.itertuples()},
               "mcse": {r.quantity: round(r.mcse, 6) for r in h.itertuples()}}
    p = target or reference_path(name)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return p


def verify(name: str, posterior: str | Path | None = None, reference: Path | None = None) -> pd.DataFrame:
    ref = json.loads((reference or reference_path(name)).read_text(encoding="utf-8"))
    source = posterior or name
    _, meta = load_posterior(source)
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
    if ref["data_hash"] != meta["data_hash"]:
        rows.append({"analysis": name, "quantity": "data_hash", "reference": ref["data_hash"][:12],
                     "reproduced": meta["data_hash"][:12], "tolerance": np.nan,
                     "status": "FAIL (data changed: references are stale)"})
    return pd.DataFrame(rows)
