"""Fit an analysis, check convergence, and save the posterior with everything needed to trust it.

:func:`fit_analysis` is the one way results are produced: it validates and harmonises the data,
prepares the registered model's data (with its exclusion report), samples with an explicit seed
and sampler settings, computes the pointwise log-likelihood, draws the prior, runs the convergence
checks on every sampled variable, and returns a :class:`trt_recovery.posterior.Fit` (saved as
netCDF with its provenance in DataTree groups; see :mod:`trt_recovery.posterior`). A fit failing
its checks is saved next to the target as ``<name>.failed.nc`` and raises
:class:`FitFailedError`: it never becomes the cached posterior.

Convergence checks (arviz-stats, on every free variable of the model, including Dirichlet weights
and imputed covariates): rank-normalised split R-hat, minimum bulk ESS, divergences, E-BFMI of
every chain, and the share of transitions that hit the maximum tree depth.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from trt_recovery import paths
from trt_recovery.config import AnalysisConfig, ChecksConfig, SamplerConfig, config_identity
from trt_recovery.harmonise import harmonise
from trt_recovery.models import ModelData, get_model
from trt_recovery.power_scaling import log_prior_dataset
from trt_recovery.posterior import Fit, FitFailedError, StaleFitError, attach_provenance, load_fit, save_tree
from trt_recovery.validate import Dataset, load_dataset

__all__ = ["ConvergenceReport", "Fit", "FitFailedError", "StaleFitError", "check_convergence", "fit_analysis",
           "load_fit", "sample"]
PACKAGES = (
    "trt-recovery",
    "pymc",
    "pytensor",
    "arviz",
    "arviz-base",
    "arviz-stats",
    "numpy",
    "pandas",
    "scipy",
    "xarray",
    "h5netcdf",
    "nutpie",
    "numpyro",
    "jax",
)


@dataclass
class ConvergenceReport:
    rhat_max: float
    ess_bulk_min: float
    divergences: int
    checks: list[dict[str, Any]]
    worst: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c["passed"] for c in self.checks)

    def describe(self) -> str:
        return "; ".join(
            f"{c['check']}: {c['value']:.4g} ({'pass' if c['passed'] else 'FAIL'}, needs {c['requirement']})"
            for c in self.checks
        )

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "rhat_max": self.rhat_max, "ess_bulk_min": self.ess_bulk_min,
                "divergences": self.divergences, "checks": self.checks, "worst": self.worst}


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def git_commit(root: Path = paths.ROOT) -> str:
    """The current commit (with ``-dirty`` when the work tree differs), or ``unknown``."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def frame_hash(df: pd.DataFrame) -> str:
    """SHA-256 of a frame's CSV text (the data a model actually saw)."""
    return hashlib.sha256(df.to_csv(index=False).encode()).hexdigest()


def _max_over(ds: xr.Dataset, fn) -> tuple[float, str]:
    best, where = None, ""
    for name, v in ds.data_vars.items():
        if not v.size:
            continue
        val = float(fn(v.values))
        if np.isnan(val):
            continue
        if best is None or val > best:
            best, where = val, name
    return (best if best is not None else float("nan")), where


def _treedepth_saturation(stats: xr.Dataset, max_depth: int) -> float:
    """Share of transitions that hit the maximum tree depth (whatever the backend calls it)."""
    for name in ("reached_max_treedepth", "maxdepth_reached"):
        if name in stats:
            return float(stats[name].astype(bool).mean())
    if "tree_depth" in stats:
        return float((stats["tree_depth"] >= max_depth).mean())
    if "depth" in stats:
        return float((stats["depth"] >= max_depth).mean())
    return 0.0


def check_convergence(posterior: xr.DataTree, var_names: list[str], checks: ChecksConfig,
                      max_depth: int = SamplerConfig.max_treedepth) -> ConvergenceReport:
    """R-hat, bulk ESS (arviz-stats) on ``var_names``, divergences, E-BFMI and tree depth (against
    the sampler's ``max_depth``), against the gates."""
    import arviz_stats as azs

    post = posterior["posterior"].to_dataset()[[v for v in var_names if v in posterior["posterior"]]]
    rhat = azs.rhat(post)
    ess = azs.ess(post, method="bulk")
    rhat_max, rhat_where = _max_over(rhat, np.nanmax)
    ess_neg, ess_where = _max_over(ess, lambda a: -np.nanmin(a))
    ess_min = -ess_neg
    stats = posterior["sample_stats"].to_dataset()
    div = int(stats["diverging"].sum().item()) if "diverging" in stats else 0
    if "energy" in stats:
        bfmi = np.atleast_1d(np.asarray(azs.bfmi(posterior["sample_stats"].to_dataset()[["energy"]])["energy"]))
        bfmi_min = float(np.min(bfmi))
    else:
        bfmi_min = float("nan")
    depth = _treedepth_saturation(stats, max_depth)
    report = [
        {"check": "rhat_max", "value": rhat_max, "requirement": f"<= {checks.rhat_max}", "passed": rhat_max <= checks.rhat_max},
        {"check": "ess_bulk_min", "value": ess_min, "requirement": f">= {checks.ess_bulk_min:g}", "passed": ess_min >= checks.ess_bulk_min},
        {"check": "divergences", "value": div, "requirement": f"<= {checks.max_divergences}", "passed": div <= checks.max_divergences},
        {"check": "ebfmi_min", "value": bfmi_min, "requirement": f">= {checks.ebfmi_min}",
         "passed": bool(np.isnan(bfmi_min) or bfmi_min >= checks.ebfmi_min)},
        {"check": "max_treedepth_share", "value": depth, "requirement": f"<= {checks.max_treedepth_share}",
         "passed": depth <= checks.max_treedepth_share},
    ]
    return ConvergenceReport(rhat_max=rhat_max, ess_bulk_min=ess_min, divergences=div, checks=report,
                             worst={"rhat": rhat_where, "ess_bulk": ess_where})


def sample(model: pm.Model, sampler: SamplerConfig, progressbar: bool = False) -> xr.DataTree:
    """Run NUTS with the configured backend and an explicit seed.

    PyMC's own sampler runs its chains in processes started by ``forkserver`` (never a bare fork
    of a process that may hold JAX's threads). nutpie runs through
    :func:`trt_recovery.compiled.sample_nutpie`: the same draws as ``pm.sample`` gives, with the
    compiled model reused when this process has already compiled the same graph (other data).
    """
    if sampler.backend == "nutpie":
        from trt_recovery.compiled import sample_nutpie

        return sample_nutpie(model, draws=sampler.draws, tune=sampler.tune, chains=sampler.chains,
                             cores=min(sampler.cores, sampler.chains), seed=sampler.seed,
                             target_accept=sampler.target_accept, mass_matrix=sampler.mass_matrix,
                             max_treedepth=sampler.max_treedepth)
    kwargs: dict[str, Any] = dict(
        draws=sampler.draws,
        tune=sampler.tune,
        chains=sampler.chains,
        cores=min(sampler.cores, sampler.chains),
        random_seed=sampler.seed,
        nuts_sampler=sampler.backend,
        progressbar=progressbar,
    )
    if sampler.backend == "pymc":
        import multiprocessing

        kwargs["mp_ctx"] = multiprocessing.get_context("forkserver")
    # PyMC's NUTS calls it max_treedepth; numpyro's NUTS (which pm.sample hands these to) max_tree_depth
    depth_key = "max_tree_depth" if sampler.backend == "numpyro" else "max_treedepth"
    kwargs["nuts"] = {"target_accept": sampler.target_accept, depth_key: sampler.max_treedepth}
    with model:
        return pm.sample(**kwargs)


def fit_analysis(
    config: AnalysisConfig,
    *,
    dataset: Dataset | None = None,
    harmonised_outcomes: pd.DataFrame | None = None,
    seed: int | None = None,
    sampler_overrides: dict[str, Any] | None = None,
    save: bool = True,
    path: Path | None = None,
    progressbar: bool = False,
    raise_on_failure: bool = True,
    model_data: ModelData | None = None,
    log_likelihood: bool = True,
    prior_draws: int = 1000,
) -> Fit:
    """Fit ``config`` and save the posterior.

    Parameters
    ----------
    config : AnalysisConfig
        Validated analysis config (:func:`trt_recovery.config.load_config`).
    dataset : Dataset, optional
        A validated dataset; by default the repository's ``data/`` is loaded and validated.
    harmonised_outcomes : DataFrame, optional
        A ready harmonised outcome table (e.g. simulated data) used instead of ``dataset``;
        its content hash is recorded as the data hash.
    seed : int, optional
        Overrides ``config.sampler.seed``.
    sampler_overrides : dict, optional
        Overrides of other sampler settings (draws, tune, chains, backend...), e.g. for tests.
    save : bool
        Write the posterior to ``path`` (default ``analysis/results/posteriors/<name>.nc``).
    raise_on_failure : bool
        Raise :class:`FitFailedError` when a convergence check fails (after saving the failed
        fit as ``<name>.failed.nc``).
    model_data : ModelData, optional
        Prepared model data (e.g. with some observation weights set to 0); by default prepared
        from the data.
    log_likelihood : bool
        Compute the pointwise log-likelihood group (needed for LOO; refits that are only
        summarised, such as leave-one-study-out, skip it).
    prior_draws : int
        Draws of the prior kept for prior predictive checks (0: none).

    Returns
    -------
    Fit
        The posterior with its provenance (:class:`trt_recovery.posterior.Fit`); ``fit.convergence``
        holds the checks.
    """
    sampler = replace(config.sampler, **(sampler_overrides or {}))
    if seed is not None:
        sampler = replace(sampler, seed=int(seed))
    spec = get_model(config.model)
    if harmonised_outcomes is not None or model_data is not None:
        source = "table"
        data_hash_value = frame_hash(harmonised_outcomes if harmonised_outcomes is not None else model_data.used)
        if model_data is None:
            model_data = spec.prepare(harmonised_outcomes, config.data)
    else:
        ds = dataset if dataset is not None else load_dataset()
        source = "repository" if dataset is None else "dataset"
        data_hash_value = ds.data_hash
        harmonised = harmonise(ds)
        model_data = spec.prepare(harmonised.outcomes, config.data)
        # rows harmonisation could not use are exclusions of every model too
        model_data.exclusions = pd.concat(
            [harmonised.exclusions, model_data.exclusions], ignore_index=True
        ).sort_values("outcome_id", kind="stable", ignore_index=True)
    model = spec.build(model_data, config.priors)
    posterior = sample(model, sampler, progressbar=progressbar)
    if log_likelihood:
        pm.compute_log_likelihood(posterior, model=model, progressbar=False)
        # log prior of the top-level priors at every draw: prior power-scaling sensitivity
        posterior["log_prior"] = log_prior_dataset(posterior, model)
    if prior_draws:
        with model:  # prior draws of every unobserved quantity, kept for prior predictive checks
            names = [v.name for v in model.free_RVs] + [v.name for v in model.deterministics]
            prior = pm.sample_prior_predictive(draws=prior_draws, random_seed=sampler.seed, var_names=names)
        posterior["prior"] = prior["prior"]
    free = [v.name for v in model.free_RVs]
    convergence = check_convergence(posterior, free, config.checks, sampler.max_treedepth)
    attrs = {
        "analysis": config.name,
        "model": config.model,
        "model_identity": spec.identity(),
        "config_identity": config_identity(config),
        "data_hash": data_hash_value,
        "data_source": source,
        "model_data_hash": frame_hash(model_data.used),
        "seed": int(sampler.seed),
        "backend": sampler.backend,
        "git_commit": git_commit(),
        "created_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "creation_library": "trt-recovery",
        "creation_library_version": package_versions()["trt-recovery"],
        "creation_library_language": "Python",
        "inference_library": "pymc",
        "inference_library_version": pm.__version__,
    }
    provenance = {
        "sampler": asdict(sampler),
        "config": {**config.to_dict(), "sampler": asdict(sampler)},
        "packages": package_versions(),
        "platform": f"{platform.platform()} / {sys.implementation.name}",
        "convergence": convergence.as_dict(),
        "coords": model_data.coords,
        "free_variables": free,
    }
    tables = {"used_rows": model_data.used, "exclusions": model_data.exclusions}
    if model_data.arms is not None and len(model_data.arms):
        tables["arms"] = model_data.arms.rename_axis("arm_id")
    attach_provenance(posterior, attrs=attrs, provenance=provenance, tables=tables, terms=model_data.terms)
    fit = Fit(tree=posterior, path=None, _model_data=model_data)
    if save:
        target = Path(path) if path is not None else paths.posterior_file(config.name)
        out = target if convergence.passed else target.with_name(target.stem + ".failed.nc")
        save_tree(posterior, out)
        if not convergence.passed:
            target.unlink(missing_ok=True)
        else:  # a failed posterior of an earlier run no longer describes this analysis
            target.with_name(target.stem + ".failed.nc").unlink(missing_ok=True)
        fit.path = out
    if not convergence.passed and raise_on_failure:
        raise FitFailedError(
            f"FIT FAILED for analysis '{config.name}' (seed {sampler.seed}): {convergence.describe()}."
            + (f" Failed posterior kept at {fit.path} for inspection." if fit.path else "")
        )
    return fit
