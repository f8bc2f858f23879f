"""Leave-one-study-out influence analysis.

For an analysis whose posterior is cached, every study that contributes a used row is dropped in
turn and the analysis is refitted with the same config and seed. Each refit's headline numbers
(the quantities :mod:`trt_recovery.verify` checks: pooled rates for the success model;
P(recovered by 12 months), P(never) and median time for the survival model) are set beside the
full-data numbers.

A refit that fails its convergence checks only through divergences is run once more with a
higher ``target_accept`` (default 0.999, a fixed rule rather than a search over settings; the
seed stays the same) and the table's ``sampler_note`` says so. A refit that still fails is kept
in the table with ``checks_passed = False`` and the failing check named; its numbers are shown but must not be read as results. A quantity that a
refit cannot estimate (the dropped study was the only evidence for a strategy) is left empty and
the table says why.

The refits are independent and run through Dask distributed (:mod:`trt_recovery.parallel`): a
local cluster with one worker per core by default, or a scheduler given by address.

``trt-recovery loso <analysis>`` (``make loso``) writes ``<analysis>_loso.{csv,md,tex}`` under
``analysis/results/tables``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trt_recovery import paths, tables
from trt_recovery.config import AnalysisConfig, load_config
from trt_recovery.fitting import fit_analysis
from trt_recovery.harmonise import harmonise
from trt_recovery.parallel import TaskError, run_tasks
from trt_recovery.posterior import load_fit
from trt_recovery.summaries import interval
from trt_recovery.validate import load_dataset

COLUMNS = [
    "dropped_study", "quantity", "full_median", "loso_median", "loso_lower95", "loso_upper95",
    "shift", "checks_passed", "checks", "sampler_note", "note",
]
#: target_accept of the one retry of a refit that failed through divergences only
RETRY_TARGET_ACCEPT = 0.999
#: refits are summarised, never saved: no pointwise log-likelihood and no prior draws
REFIT_OPTIONS = {"log_likelihood": False, "prior_draws": 0}


def contributing_studies(fit) -> list[str]:
    """Studies with at least one row used by the fit, in order of first appearance."""
    return list(dict.fromkeys(fit.used["study_id"]))


def leave_one_study_out(
    config: AnalysisConfig,
    *,
    outcomes: pd.DataFrame | None = None,
    full: Any = None,
    sampler_overrides: dict[str, Any] | None = None,
    retry_target_accept: float | None = RETRY_TARGET_ACCEPT,
    scheduler: str | None = None,
    n_workers: int | None = None,
    studies: list[str] | None = None,
) -> pd.DataFrame:
    """Refit ``config`` once per contributing study (or per study of ``studies``), without that study.

    Parameters
    ----------
    config : AnalysisConfig
        The analysis to perturb.
    outcomes : DataFrame, optional
        Harmonised outcome table; by default built from the repository's ``data/``.
    full : Fit, optional
        The full-data fit; by default the cached posterior of ``config``.
    sampler_overrides : dict, optional
        Passed to :func:`trt_recovery.fitting.fit_analysis` (e.g. fewer draws in tests).
    retry_target_accept : float or None
        ``target_accept`` of the single retry of a refit whose only failed check is divergences
        (None: no retry). Used only when higher than the config's own value.
    scheduler, n_workers
        Where the refits run (:func:`trt_recovery.parallel.run_tasks`: a local Dask cluster by
        default, ``"inprocess"`` threads, or a scheduler address).
    studies : list of str, optional
        Only these studies (each must contribute a used row; the living review's attribution
        passes the studies of rows added or changed since the reference).

    Returns
    -------
    DataFrame
        One row per (dropped study, headline quantity), columns :data:`COLUMNS`.
    """
    if outcomes is None:
        outcomes = harmonise(load_dataset()).outcomes
    full = full if full is not None else load_fit(config.name)
    full_draws = full.spec.headline(full)
    contributing = contributing_studies(full)
    if studies is not None:
        unknown = [st for st in studies if st not in contributing]
        if unknown:
            raise ValueError(f"{config.name}: {', '.join(unknown)} contribute no used row; nothing to leave out")
    studies = contributing if studies is None else list(studies)
    tasks = [RefitTask(config, outcomes[outcomes["study_id"] != study].reset_index(drop=True), study,
                       sampler_overrides, retry_target_accept) for study in studies]
    results = run_tasks(refit_without, tasks, labels=[f"without {s}" for s in studies], scheduler=scheduler,
                        n_workers=n_workers)
    rows = []
    for study, res in zip(studies, results, strict=True):
        if isinstance(res, TaskError):
            res = {"draws": {}, "passed": False, "checks": f"refit raised: {res.error}", "sampler_note": ""}
        for q, full_v in full_draws.items():
            fmed = float(np.median(full_v))
            row = dict(dropped_study=study, quantity=q, full_median=fmed, checks_passed=res["passed"],
                       checks=res["checks"], sampler_note=res["sampler_note"], note="")
            if q in res["draws"]:
                med, lo, hi = interval(res["draws"][q])
                row.update(loso_median=med, loso_lower95=lo, loso_upper95=hi, shift=med - fmed)
            else:
                row.update(loso_median=np.nan, loso_lower95=np.nan, loso_upper95=np.nan, shift=np.nan,
                           note="not estimable without this study (no other data for this level)")
            if not res["passed"]:
                row["note"] = ("refit FAILED its convergence checks; numbers not usable. " + row["note"]).strip()
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


@dataclass(frozen=True)
class RefitTask:
    """One leave-one-study-out refit: the config, the outcomes without the study, and settings."""

    config: AnalysisConfig
    kept: pd.DataFrame
    study: str
    sampler_overrides: dict[str, Any] | None
    retry_target_accept: float | None


def refit_without(task: RefitTask) -> dict[str, Any]:
    """Refit one analysis without one study (run on a Dask worker): its headline draws and checks.

    A refit failing only through divergences is run once more at ``retry_target_accept``.
    """
    config, kept, overrides = task.config, task.kept, task.sampler_overrides
    res = fit_analysis(config, harmonised_outcomes=kept, save=False, raise_on_failure=False,
                       sampler_overrides=overrides, **REFIT_OPTIONS)
    sampler_note = ""
    failed = [c["check"] for c in res.convergence["checks"] if not c["passed"]]
    base_ta = {"target_accept": config.sampler.target_accept, **(overrides or {})}["target_accept"]
    if (failed and set(failed) <= {"divergences"} and task.retry_target_accept is not None
            and task.retry_target_accept > base_ta):
        sampler_note = (f"{res.convergence['divergences']} divergence(s) at target_accept {base_ta}; "
                        f"refitted once at {task.retry_target_accept}")
        res = fit_analysis(config, harmonised_outcomes=kept, save=False, raise_on_failure=False,
                           sampler_overrides={**(overrides or {}), "target_accept": task.retry_target_accept},
                           **REFIT_OPTIONS)
    if task.study in set(res.used["study_id"]):  # pragma: no cover - guards the filter above
        raise RuntimeError(f"study {task.study} still in the refit's data")
    checks = "; ".join(f"{c['check']} {c['value']:.4g} ({'pass' if c['passed'] else 'FAIL'})"
                       for c in res.convergence["checks"])
    return {"draws": res.spec.headline(res), "passed": res.passed, "checks": checks, "sampler_note": sampler_note}


def write_table(name: str, table: pd.DataFrame, directory: Path | None = None) -> list[Path]:
    """``<name>_loso`` as CSV, Markdown and LaTeX (via :func:`trt_recovery.tables.write_table`)."""
    return tables.write_table(table, f"{name}_loso", directory)


def run(name: str, retry_target_accept: float | None = RETRY_TARGET_ACCEPT, scheduler: str | None = None,
        n_workers: int | None = None) -> tuple[pd.DataFrame, list[Path]]:
    config = load_config(paths.ANALYSIS_DIR / f"{name}.yaml")
    table = leave_one_study_out(config, retry_target_accept=retry_target_accept, scheduler=scheduler,
                                n_workers=n_workers)
    return table, write_table(name, table)
