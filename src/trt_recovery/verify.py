"""Reproduction check: headline numbers against small committed reference files.

``make verify`` (``trt-recovery verify``) refits any analysis whose inputs changed (through make),
recomputes each headline number from the posterior draws, and compares it with
``analysis/reference/<analysis>.json``. A number passes when it lies within four Monte Carlo
standard errors of the reference (MCSE = posterior SD / sqrt(minimum bulk ESS of the fit), a
conservative bound for means and medians), with a floor of 0.005 on the reported scale. The
table printed is what a reviewer reads; the exit status is non-zero when anything fails.
``trt-recovery verify --write-reference`` rewrites the references (maintainers only, after an
intended change, in its own reviewed commit).

Each reference also records the provenance of the fit it was written from (data hash, hash of
the rows the model used, model-code and config identities, seed, backend, git commit, package
versions). When a number fails, the cause column names what differs between reference and
reproduction, in the order a reviewer would look: the data, the config or priors, the model
code, the packages; when nothing differs, Monte Carlo error beyond the tolerance. Numbers kept on
the log scale for the check (median times and concentrations) are also shown as users read them.

The derived data (harmonised table, evidence map, BibTeX references) are checked by their
SHA-256 against ``analysis/reference/derived.json``.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from trt_recovery import paths
from trt_recovery.posterior import load_fit

REFERENCE_DIR = paths.ANALYSIS_DIR / "reference"
DERIVED_REFERENCE = REFERENCE_DIR / "derived.json"
N_MCSE = 4.0
FLOOR = 0.005
#: derived files whose bytes are part of the reproduction (relative to the results directory)
DERIVED_FILES = ("data/harmonised_outcomes.csv", "data/harmonisation_exclusions.csv", "data/references.bib",
                 "tables/evidence_map.csv")
#: what a mismatch can come from, in the order it is looked for: (provenance keys, cause)
CAUSES = (
    (("model_data_hash",), "data changed (the rows this model uses)"),
    (("config_identity",), "config or priors changed"),
    (("model_identity",), "model code changed"),
    (("packages",), "package versions differ"),
)


def _repository_data_hash() -> str:
    from trt_recovery.validate import data_hash

    return data_hash()


def provenance(fit) -> dict:
    """What a reproduction depends on, as recorded in a saved fit."""
    a = fit.attrs
    return {"data_hash": fit.data_hash, "model_data_hash": a.get("model_data_hash"),
            "model_identity": a.get("model_identity"), "config_identity": a.get("config_identity"),
            "seed": fit.seed, "backend": a.get("backend"), "git_commit": a.get("git_commit"),
            "packages": dict(fit.packages)}


def cause_of_mismatch(reference: dict | None, reproduction: dict) -> str:
    """The first provenance item that differs between a reference and a reproduction."""
    if not reference:
        return "unknown: the reference records no provenance (rewrite it with --write-reference)"
    for keys, cause in CAUSES:
        differ = [k for k in keys if reference.get(k) != reproduction.get(k)]
        if differ:
            if keys == ("packages",):
                ref, rep = reference.get("packages") or {}, reproduction.get("packages") or {}
                names = sorted(k for k in set(ref) | set(rep) if ref.get(k) != rep.get(k))
                return f"{cause} ({', '.join(f'{k} {ref.get(k)} -> {rep.get(k)}' for k in names)})"
            return cause
    return "Monte Carlo error beyond the tolerance (same data, config, code and packages)"


def as_read(quantity: str, value: float) -> tuple[str, float]:
    """A headline number on the scale users read (log-scale quantities exponentiated)."""
    if quantity.startswith("log_") and np.isfinite(value):
        return quantity[len("log_"):], float(np.exp(value))
    return quantity, value


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


def reference_names() -> list[str]:
    """The analyses with a committed reference (the derived-data reference is not one)."""
    return sorted(p.stem for p in REFERENCE_DIR.glob("*.json") if p != DERIVED_REFERENCE)


def tolerance(mcse_now: float, mcse_reference: float) -> float:
    """How far a reproduced number may lie from its reference: four combined Monte Carlo errors,
    at least ``FLOOR``."""
    return max(N_MCSE * float(np.hypot(mcse_now, mcse_reference)), FLOOR)


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
    fig.savefig(out, dpi=90, metadata={"data_hash": _repository_data_hash(), "analysis": fit.analysis,
                                       "git_commit": str(fit.tree.attrs.get("git_commit", ""))})
    plt.close(fig)
    return out


def write_reference(name: str, posterior: str | Path | None = None, target: Path | None = None) -> Path:
    from trt_recovery.review import row_hashes

    source = posterior or name
    h = headline(source)
    fit = load_fit(source)
    # data_hash: the repository's data when the reference was written (a fit whose rows did not
    # change is not refitted, so its own data_hash may be older; provenance keeps both)
    payload = {"analysis": name, "seed": fit.seed, "data_hash": _repository_data_hash(),
               "provenance": provenance(fit),
               "rows": row_hashes(fit.used),
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
    cause = cause_of_mismatch(ref.get("provenance"), provenance(fit))
    rows = []
    for q, ref_value in ref["values"].items():
        label, ref_read = as_read(q, ref_value)
        if q not in h.index:
            rows.append({"analysis": name, "quantity": label, "reference": ref_read, "reproduced": np.nan,
                         "tolerance": np.nan, "status": "FAIL (missing)", "cause": cause})
            continue
        tol = tolerance(h.loc[q, "mcse"], ref["mcse"].get(q, 0.0))
        value = h.loc[q, "value"]
        ok = abs(value - ref_value) <= tol
        rows.append({"analysis": name, "quantity": label, "reference": round(ref_read, 4),
                     "reproduced": round(as_read(q, value)[1], 4),
                     "tolerance": f"{tol:.3g}" + (" (log scale)" if label != q else ""),
                     "status": "pass" if ok else "FAIL", "cause": "" if ok else cause})
    for q in h.index.difference(list(ref["values"])):
        label, value = as_read(q, h.loc[q, "value"])
        rows.append({"analysis": name, "quantity": label, "reference": np.nan, "reproduced": round(value, 4),
                     "tolerance": np.nan, "status": "FAIL (not in the reference)", "cause": cause})
    current = _repository_data_hash()
    if ref["data_hash"] != current:
        rows.append({"analysis": name, "quantity": "data_hash", "reference": ref["data_hash"][:12],
                     "reproduced": current[:12], "tolerance": np.nan,
                     "status": "FAIL (data changed since the references were written)", "cause": "data changed"})
    return pd.DataFrame(rows)


def header(name: str, posterior: str | Path | None = None, reference: Path | None = None) -> str:
    """Both provenances side by side (Markdown), printed above an analysis's rows."""
    ref = json.loads((reference or reference_path(name)).read_text(encoding="utf-8")).get("provenance") or {}
    rep = provenance(load_fit(posterior or name))
    keys = ("data_hash", "model_data_hash", "model_identity", "config_identity", "seed", "backend", "git_commit")
    lines = [f"### {name}", "", "| | reference | reproduction |", "|---|---|---|"]
    short = lambda v: "(not recorded)" if v is None else (str(v)[:12] if len(str(v)) > 40 else str(v))  # noqa: E731
    for k in keys:
        lines.append(f"| {k} | {short(ref.get(k))} | {short(rep.get(k))} |")
    rp, pp = ref.get("packages") or {}, rep["packages"]
    for k in sorted(set(rp) | set(pp)):
        if k in ("pymc", "pytensor", "arviz-stats", "numpy", "nutpie", "numpyro", "jax") or rp.get(k) != pp.get(k):
            lines.append(f"| {k} | {rp.get(k, '(not recorded)')} | {pp.get(k, '(absent)')} |")
    return "\n".join(lines)


def derived_hashes(results_dir: Path | None = None) -> dict[str, str]:
    """SHA-256 of each derived data file (absent files are named as absent)."""
    root = results_dir or paths.RESULTS_DIR
    out = {}
    for rel in DERIVED_FILES:
        f = root / rel
        out[rel] = hashlib.sha256(f.read_bytes()).hexdigest() if f.exists() else "absent"
    return out


def write_derived_reference(target: Path | None = None) -> Path:
    out = target or DERIVED_REFERENCE
    payload = {"data_hash": _repository_data_hash(), "sha256": derived_hashes()}
    out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return out


def verify_derived(reference: Path | None = None, results_dir: Path | None = None) -> pd.DataFrame:
    """Each derived data file against its committed hash; a mismatch names data or code as the cause."""
    ref = json.loads((reference or DERIVED_REFERENCE).read_text(encoding="utf-8"))
    now = derived_hashes(results_dir)
    data_changed = ref.get("data_hash") != _repository_data_hash()
    rows = []
    for rel, h in ref["sha256"].items():
        ok = now.get(rel) == h
        cause = "" if ok else ("file missing: run `make data`" if now.get(rel) == "absent" else
                               "data changed" if data_changed else "code changed (harmonise, evidence map or references)")
        rows.append({"analysis": "derived data", "quantity": rel, "reference": h[:12], "reproduced": now.get(rel, "")[:12],
                     "tolerance": "identical bytes", "status": "pass" if ok else "FAIL", "cause": cause})
    return pd.DataFrame(rows)
