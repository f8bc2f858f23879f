r"""Leave-one-study-out influence analysis.

For an analysis whose posterior is cached, every study that contributes a used row is dropped in
turn, and the headline numbers without it (the quantities :mod:`trt_recovery.verify` checks: pooled
rates for the success model; P(recovered by 12 months), P(never) and median time for the survival
model) are set beside the full-data numbers.

Two ways to the posterior without a study (``method``):

* ``"psis"`` (the default): Pareto-smoothed importance sampling of the saved posterior. The
  draws are reweighted by :math:`w^{(s)} \propto 1 / p(y_k \mid \theta^{(s)})`, where
  :math:`y_k` is everything study :math:`k` contributes to the likelihood (its outcome rows and
  its reported covariates: every variable of the fit's ``log_likelihood`` group, summed over the
  study's observations), smoothed by PSIS (``arviz_stats.loo``; Vehtari et al. 2024, *JMLR* 25:72).
  The weighted median and 95% interval are read off the full fit's headline draws. No sampling.
  The estimate is used only where PSIS is reliable: the model without the study has the same
  parameters (no factor level, threshold or covariate loses its last data; otherwise importance
  sampling could not drop them, and the refit reports them as not estimable), **and** the
  study's Pareto :math:`\hat k` is at most :func:`pareto_k_max` (0.7 for the draws these fits
  keep). Every other study is refitted, as below; the table's ``method`` column says which way
  each row went, naming the first reason found in that order. The headline numbers are those of
  the evidence left (:meth:`trt_recovery.posterior.Fit.view`): a strategy x population cell whose
  only rows were the study's is not estimable, as in a refit, although its parameters remain.
* ``"refit"``: every study is refitted with the same config and seed (exact, and as slow as one
  fit per study).

A refit that fails its convergence checks only through divergences is run once more with a
higher ``target_accept`` (default 0.999, a fixed rule rather than a search over settings; the
seed stays the same) and the table's ``sampler_note`` says so. A refit that still fails is kept
in the table with ``checks_passed = False`` and the failing check named; its numbers are shown but must not be read as results. A quantity that a
refit cannot estimate (the dropped study was the only evidence for a strategy) is left empty and
the table says why. An analysis with a single study has nothing left to fit without it: its rows
say so (``method`` "none"), with no refit and no failure.

The refits are independent and run through Dask distributed (:mod:`trt_recovery.parallel`): a
local cluster with one worker per core by default, or a scheduler given by address.

``trt-recovery loso <analysis>`` (``make loso``) writes ``<analysis>_loso.{csv,md,tex}`` under
``analysis/results/tables``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from trt_recovery import paths, tables
from trt_recovery.config import AnalysisConfig, load_config
from trt_recovery.fitting import fit_analysis
from trt_recovery.harmonise import harmonise
from trt_recovery.parallel import TaskError, run_tasks
from trt_recovery.posterior import load_fit
from trt_recovery.summaries import SAMPLE_DIMS, interval, weighted_interval
from trt_recovery.validate import load_dataset

COLUMNS = [
    "dropped_study", "quantity", "full_median", "loso_median", "loso_lower95", "loso_upper95",
    "shift", "method", "pareto_k", "checks_passed", "checks", "sampler_note", "note",
]
#: ways to the posterior without a study (module docstring)
METHODS = ("psis", "refit")
#: target_accept of the one retry of a refit that failed through divergences only
RETRY_TARGET_ACCEPT = 0.999
#: refits are summarised, never saved: no pointwise log-likelihood and no prior draws
REFIT_OPTIONS = {"log_likelihood": False, "prior_draws": 0}


def contributing_studies(fit) -> list[str]:
    """Studies with at least one row used by the fit, in order of first appearance."""
    return list(dict.fromkeys(fit.used["study_id"]))


# ------------------------------------------------------------------------------------------------
# Importance sampling of the saved posterior


def pareto_k_max(n_draws: int) -> float:
    r"""Largest Pareto :math:`\hat k` at which PSIS is trusted with ``n_draws`` draws:
    :math:`\min(1 - 1/\log_{10} S, 0.7)` (Vehtari et al. 2024, the threshold ``arviz_stats`` warns at)."""
    return float(min(1.0 - 1.0 / np.log10(n_draws), 0.7))


def study_log_likelihood(fit) -> xr.DataArray:
    """Log-likelihood of each study's data at every draw, dims ``(chain, draw, dropped_study)``.

    Every variable of the fit's ``log_likelihood`` group counts (outcome terms and reported
    covariates alike). An observation is assigned to its study through its label: an outcome id
    (``<outcome_id>`` or ``<outcome_id>#<k>``) or an arm id of the fit's used rows. A label that
    matches neither raises: an observation left out would make the weights wrong without a trace.
    """
    if "log_likelihood" not in fit.tree.children:
        raise ValueError(f"{fit.describe_source()}: no log_likelihood group (fitted with log_likelihood=False)")
    used = fit.used
    owner = {**dict(zip(used["arm_id"].astype(str), used["study_id"].astype(str), strict=True)),
             **dict(zip(used["outcome_id"].astype(str), used["study_id"].astype(str), strict=True))}
    studies = contributing_studies(fit)
    ll = fit.tree["log_likelihood"].to_dataset()
    parts = []
    for name, da in ll.data_vars.items():
        obs_dims = [d for d in da.dims if d not in SAMPLE_DIMS]
        if len(obs_dims) != 1:
            raise ValueError(f"{fit.describe_source()}: log-likelihood variable {name!r} has dims {da.dims}; "
                             "expected one observation dimension")
        labels = [str(v) for v in da[obs_dims[0]].values]
        study_of = []
        for label in labels:
            study = owner.get(label, owner.get(label.split("#", 1)[0]))
            if study is None:
                raise ValueError(f"{fit.describe_source()}: observation {label!r} of log-likelihood variable "
                                 f"{name!r} belongs to no used outcome row or arm; cannot assign it to a study")
            study_of.append(study)
        by_study = da.assign_coords({obs_dims[0]: study_of}).groupby(obs_dims[0]).sum()
        parts.append(by_study.rename({obs_dims[0]: "dropped_study"}).reindex(dropped_study=studies, fill_value=0.0))
    if not parts:
        raise ValueError(f"{fit.describe_source()}: the log_likelihood group is empty")
    return sum(parts[1:], parts[0]).transpose(*SAMPLE_DIMS, "dropped_study")


def psis_weights(posterior: xr.Dataset, log_lik: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    r"""PSIS log weights ``(dropped_study, chain, draw)`` and Pareto :math:`\hat k` per study, for
    leaving each study's log-likelihood out (``arviz_stats.loo`` on the study sums; its relative
    efficiency from the posterior's ESS)."""
    import arviz_stats as azs

    tree = xr.DataTree.from_dict({"posterior": posterior,
                                  "log_likelihood": log_lik.to_dataset(name="study_log_lik")})
    with warnings.catch_warnings():  # a high k-hat is handled (that study is refitted), not warned about
        warnings.simplefilter("ignore", UserWarning)
        res = azs.loo(tree, pointwise=True, var_name="study_log_lik")
    return res.log_weights, res.pareto_k


def parameter_structure(config: AnalysisConfig, outcomes: pd.DataFrame) -> dict[str, tuple]:
    """The sampled parameters of ``config``'s model on ``outcomes``: name -> labels of each named
    dimension that is not per arm, study or observation. Two datasets with the same structure give
    models with the same parameters (importance weights can move from one to the other)."""
    from trt_recovery.models import get_model

    spec = get_model(config.model)
    model = spec.build(spec.prepare(outcomes, config.data), {**spec.default_priors, **config.priors})
    out = {}
    for rv in model.free_RVs:
        dims = [d for d in model.named_vars_to_dims.get(rv.name, ()) if d is not None and not _per_unit(d)]
        out[rv.name] = tuple((d, tuple(model.coords[d])) for d in dims)
    return out


def _per_unit(dim: str) -> bool:
    return dim in ("arm", "study") or dim.endswith("_obs") or dim.endswith("_arm")


def _structure_change(before: dict, after: dict) -> str:
    """What differs between two :func:`parameter_structure` results ('' when nothing does)."""
    gone, added = sorted(set(before) - set(after)), sorted(set(after) - set(before))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    parts = ([f"{', '.join(gone)} not in the model"] if gone else []) + (
        [f"{', '.join(added)} new in the model"] if added else []) + (
        [f"levels of {', '.join(changed)} change"] if changed else [])
    return "; ".join(parts)


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
    method: str = "psis",
) -> pd.DataFrame:
    """The headline numbers without each contributing study (or each study of ``studies``).

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
    method : {"psis", "refit"}
        Importance sampling where reliable, else a refit; or a refit for every study (module
        docstring).

    Returns
    -------
    DataFrame
        One row per (dropped study, headline quantity), columns :data:`COLUMNS`.
    """
    if method not in METHODS:
        raise ValueError(f"method {method!r}: expected one of {', '.join(METHODS)}")
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
    kept = {study: outcomes[outcomes["study_id"] != study].reset_index(drop=True) for study in studies}
    routes = {study: {"method": "refit", "pareto_k": np.nan} for study in studies}
    if len(contributing) == 1:  # nothing is left to fit: every number is not estimable, and that is no failure
        routes = {s: {"method": "none (the analysis's only study)", "pareto_k": np.nan, "result": {
            "summaries": {}, "passed": True, "checks": "", "sampler_note": ""}} for s in studies}
    elif method == "psis":
        routes.update(_psis_routes(config, full, outcomes, kept))
    refit = [s for s in studies if routes[s]["method"].startswith("refit")]
    tasks = [RefitTask(config, kept[study], study, sampler_overrides, retry_target_accept) for study in refit]
    results = dict(zip(refit, run_tasks(refit_without, tasks, labels=[f"without {s}" for s in refit],
                                        scheduler=scheduler, n_workers=n_workers) if tasks else [], strict=True))
    rows = []
    for study in studies:
        route = routes[study]
        res = results[study] if study in results else route["result"]  # a failed refit (TaskError) is falsy
        if isinstance(res, TaskError):
            res = {"summaries": {}, "passed": False, "checks": f"refit raised: {res.error}", "sampler_note": ""}
        for q, full_v in full_draws.items():
            fmed = float(np.median(full_v))
            row = dict(dropped_study=study, quantity=q, full_median=fmed, method=route["method"],
                       pareto_k=route["pareto_k"], checks_passed=res["passed"], checks=res["checks"],
                       sampler_note=res["sampler_note"], note="")
            if q in res["summaries"]:
                med, lo, hi = res["summaries"][q]
                row.update(loso_median=med, loso_lower95=lo, loso_upper95=hi, shift=med - fmed)
            else:
                row.update(loso_median=np.nan, loso_lower95=np.nan, loso_upper95=np.nan, shift=np.nan,
                           note="not estimable without this study (no other data for this level)")
            if not res["passed"]:
                row["note"] = ("refit FAILED its convergence checks; numbers not usable. " + row["note"]).strip()
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def _psis_routes(config: AnalysisConfig, full, outcomes: pd.DataFrame, kept: dict[str, pd.DataFrame]) -> dict:
    """For each study: the PSIS summaries of the headline numbers where PSIS is reliable, else the
    reason it is refitted. The numbers are those of the evidence left without the study: a
    quantity with no other data (a strategy x population cell of the binomial models) is not
    estimable, as in a refit."""
    if "log_likelihood" not in full.tree.children:
        return {s: {"method": "refit (the saved fit has no pointwise log-likelihood)", "pareto_k": np.nan}
                for s in kept}
    log_lik = study_log_likelihood(full)
    log_w, khat = psis_weights(full.posterior, log_lik)
    k_max = pareto_k_max(int(np.prod([log_lik.sizes[d] for d in SAMPLE_DIMS])))
    full_structure = parameter_structure(config, outcomes)
    routes = {}
    for study in kept:
        k = float(khat.sel(dropped_study=study))
        change = _structure_change(full_structure, parameter_structure(config, kept[study]))
        if change:  # checked first: with other parameters, no k could make the weights right
            routes[study] = {"method": f"refit (without this study: {change})", "pareto_k": k}
            continue
        if not k <= k_max:  # NaN (k could not be estimated) is refitted too
            routes[study] = {"method": f"refit (Pareto k {k:.2f} > {k_max:.2f})", "pareto_k": k}
            continue
        lw = log_w.sel(dropped_study=study).transpose(*SAMPLE_DIMS).values.reshape(-1)
        draws = full.spec.headline(full.view(full.used[full.used["study_id"] != study]))
        routes[study] = {"method": "psis", "pareto_k": k, "result": {
            "summaries": {q: weighted_interval(v, lw) for q, v in draws.items()}, "passed": True,
            "checks": f"Pareto k {k:.2f} <= {k_max:.2f}", "sampler_note": "no refit: importance-sampled"}}
    return routes


@dataclass(frozen=True)
class RefitTask:
    """One leave-one-study-out refit: the config, the outcomes without the study, and settings."""

    config: AnalysisConfig
    kept: pd.DataFrame
    study: str
    sampler_overrides: dict[str, Any] | None
    retry_target_accept: float | None


def refit_without(task: RefitTask) -> dict[str, Any]:
    """Refit one analysis without one study (run on a Dask worker): its headline (median, lower,
    upper) and checks.

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
    summaries = {q: interval(v) for q, v in res.spec.headline(res).items()}
    return {"summaries": summaries, "passed": res.passed, "checks": checks, "sampler_note": sampler_note}


def write_table(name: str, table: pd.DataFrame, directory: Path | None = None) -> list[Path]:
    """``<name>_loso`` as CSV, Markdown and LaTeX (via :func:`trt_recovery.tables.write_table`)."""
    return tables.write_table(table, f"{name}_loso", directory)


def run(name: str, retry_target_accept: float | None = RETRY_TARGET_ACCEPT, scheduler: str | None = None,
        n_workers: int | None = None, method: str = "psis") -> tuple[pd.DataFrame, list[Path]]:
    config = load_config(paths.ANALYSIS_DIR / f"{name}.yaml")
    table = leave_one_study_out(config, retry_target_accept=retry_target_accept, scheduler=scheduler,
                                n_workers=n_workers, method=method)
    return table, write_table(name, table)
