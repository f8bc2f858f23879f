"""Fit an analysis, check convergence, and save the posterior with everything needed to trust it.

:func:`fit_analysis` is the one way results are produced: it validates and harmonises the data,
prepares the registered model's data (with its exclusion report), samples with an explicit seed
and sampler settings, computes the pointwise log-likelihood, runs the convergence checks and saves
the posterior (netCDF, ``xarray.DataTree``) whose root attribute ``trt_recovery`` holds (as JSON)
the seed, sampler settings, data hash, git commit, package versions, the config, the rows used and
excluded, and the convergence checks. A fit failing its checks is saved next to the target as
``<name>.failed.nc`` and raises :class:`FitFailedError`: it never becomes the cached posterior.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from trt_recovery import paths
from trt_recovery.config import AnalysisConfig, ChecksConfig, SamplerConfig
from trt_recovery.harmonise import harmonise
from trt_recovery.models import ModelData, get_model
from trt_recovery.validate import Dataset, load_dataset

META_ATTR = "trt_recovery"
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


class FitFailedError(RuntimeError):
    """A fit did not pass its convergence checks."""


@dataclass
class ConvergenceReport:
    rhat_max: float
    ess_bulk_min: float
    divergences: int
    checks: list[dict[str, Any]]

    @property
    def passed(self) -> bool:
        return all(c["passed"] for c in self.checks)

    def describe(self) -> str:
        return "; ".join(
            f"{c['check']}: {c['value']:.4g} ({'pass' if c['passed'] else 'FAIL'}, needs {c['requirement']})"
            for c in self.checks
        )


@dataclass
class FitResult:
    posterior: xr.DataTree
    model_data: ModelData
    convergence: ConvergenceReport
    metadata: dict[str, Any]
    path: Path | None


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


def check_convergence(posterior: xr.DataTree, var_names: list[str], checks: ChecksConfig) -> ConvergenceReport:
    """R-hat (rank-normalised), minimum bulk ESS and divergences against the config's gates."""
    rhat = az.rhat(posterior, var_names=var_names)
    ess = az.ess(posterior, var_names=var_names, method="bulk")
    rhat_ds = rhat.to_dataset() if isinstance(rhat, xr.DataTree) else rhat
    ess_ds = ess.to_dataset() if isinstance(ess, xr.DataTree) else ess
    rhat_max = float(max(np.nanmax(v.values) for v in rhat_ds.data_vars.values() if v.size))
    ess_min = float(min(np.nanmin(v.values) for v in ess_ds.data_vars.values() if v.size))
    div = int(posterior["sample_stats"]["diverging"].sum().item())
    report = [
        {"check": "rhat_max", "value": rhat_max, "requirement": f"<= {checks.rhat_max}", "passed": rhat_max <= checks.rhat_max},
        {"check": "ess_bulk_min", "value": ess_min, "requirement": f">= {checks.ess_bulk_min:g}", "passed": ess_min >= checks.ess_bulk_min},
        {"check": "divergences", "value": div, "requirement": f"<= {checks.max_divergences}", "passed": div <= checks.max_divergences},
    ]
    return ConvergenceReport(rhat_max=rhat_max, ess_bulk_min=ess_min, divergences=div, checks=report)


def sample(model: pm.Model, sampler: SamplerConfig, progressbar: bool = False) -> xr.DataTree:
    """Run NUTS with the configured backend and an explicit seed."""
    kwargs: dict[str, Any] = dict(
        draws=sampler.draws,
        tune=sampler.tune,
        chains=sampler.chains,
        cores=min(sampler.cores, sampler.chains),
        random_seed=sampler.seed,
        nuts_sampler=sampler.backend,
        progressbar=progressbar,
    )
    kwargs["nuts"] = {"target_accept": sampler.target_accept}
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
) -> FitResult:
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
    """
    sampler = replace(config.sampler, **(sampler_overrides or {}))
    if seed is not None:
        sampler = replace(sampler, seed=int(seed))
    spec = get_model(config.model)
    if harmonised_outcomes is not None:
        data_hash_value = frame_hash(harmonised_outcomes)
        model_data = spec.prepare(harmonised_outcomes, config.data)
    else:
        ds = dataset if dataset is not None else load_dataset()
        data_hash_value = ds.data_hash
        harmonised = harmonise(ds)
        model_data = spec.prepare(harmonised.outcomes, config.data)
        # rows harmonisation could not use are exclusions of every model too
        model_data.exclusions = pd.concat(
            [harmonised.exclusions, model_data.exclusions], ignore_index=True
        ).sort_values("outcome_id", kind="stable", ignore_index=True)
    model = spec.build(model_data, config.priors)
    posterior = sample(model, sampler, progressbar=progressbar)
    pm.compute_log_likelihood(posterior, model=model, progressbar=False)
    with model:  # prior draws of every unobserved quantity, kept for prior predictive checks
        names = [v.name for v in model.free_RVs] + [v.name for v in model.deterministics]
        prior = pm.sample_prior_predictive(draws=1000, random_seed=sampler.seed, var_names=names)
    posterior["prior"] = prior["prior"]
    convergence = check_convergence(posterior, list(spec.summary_vars), config.checks)
    meta = {
        "analysis": config.name,
        "model": config.model,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "seed": sampler.seed,
        "sampler": asdict(sampler),
        "config": {**config.to_dict(), "sampler": asdict(sampler)},
        "data_hash": data_hash_value,
        "model_data_hash": frame_hash(model_data.used),
        "git_commit": git_commit(),
        "packages": package_versions(),
        "platform": f"{platform.platform()} / {sys.implementation.name}",
        "convergence": {
            "passed": convergence.passed,
            "rhat_max": convergence.rhat_max,
            "ess_bulk_min": convergence.ess_bulk_min,
            "divergences": convergence.divergences,
            "checks": convergence.checks,
        },
        "used_rows": json.loads(model_data.used.to_json(orient="records")),
        "exclusions": model_data.exclusions.to_dict(orient="records"),
        "coords": model_data.coords,
        "terms": {k: json.loads(v.to_json(orient="records")) for k, v in model_data.terms.items() if len(v)},
    }
    posterior.attrs[META_ATTR] = json.dumps(meta, default=str)
    out: Path | None = None
    if save:
        target = Path(path) if path is not None else paths.posterior_file(config.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        out = target if convergence.passed else target.with_suffix(".failed.nc")
        tmp = out.with_suffix(".tmp")
        posterior.to_netcdf(tmp)
        tmp.replace(out)
        if not convergence.passed:
            target.unlink(missing_ok=True)
    result = FitResult(posterior=posterior, model_data=model_data, convergence=convergence, metadata=meta, path=out)
    if not convergence.passed and raise_on_failure:
        raise FitFailedError(
            f"FIT FAILED for analysis '{config.name}' (seed {sampler.seed}): {convergence.describe()}."
            + (f" Failed posterior kept at {out} for inspection." if out else "")
        )
    return result


def load_posterior(name_or_path: str | Path) -> tuple[xr.DataTree, dict[str, Any]]:
    """Open a saved posterior and its metadata; refuse one whose checks failed."""
    p = Path(name_or_path)
    path = p if p.suffix == ".nc" else paths.posterior_file(str(name_or_path))
    if not path.exists():
        raise FileNotFoundError(f"{path}: no posterior; run `make fit` (or `trt-recovery fit {p.stem}`) first")
    dt = xr.open_datatree(path)
    meta = json.loads(dt.attrs[META_ATTR])
    if not meta["convergence"]["passed"]:
        raise FitFailedError(f"{path}: this posterior failed its convergence checks")
    return dt, meta
