r"""Simulation-based calibration (SBC) of the main survival model at the real data's shape.

Each replication draws one parameter set :math:`\tilde\theta` from the model's prior, simulates
data of exactly the real analysis's shape from it (the same arms with their strategies,
populations, preparations, covariates and study structure; the same likelihood terms with their
thresholds, times, sizes and horizons), fits the model to the simulated data with a seed, and
records the rank of :math:`\tilde\theta` among thinned posterior draws. If the fit is
computationally faithful, ranks are uniform (Talts et al. 2018, arXiv:1804.06788); the ECDF of
the fractional ranks is compared with simultaneous 95% bands (Säilynoja, Bürkner & Vehtari 2022,
Stat Comput 32:32; ``arviz_stats.ecdf_utils.ecdf_pit``).

How the data are simulated, per term (men are drawn from the mixture-cure AFT model with the
arm's true time scale and non-recovery fraction, threshold effects included):

* **interval counts**: a row starting at time zero draws ``at_risk`` men and counts recoveries by
  :math:`t_1`; the later intervals of the same arm and threshold follow the same men;
* **quantiles** (medians, IQRs): the sample quantile of the same number of men (all men, or
  recoverers); when a simulated median over all men is not reached, the row becomes "median not
  reached by" the arm's largest reported time;
* **quantiles whose number of men is not reported**: the number is drawn from the term's prior
  (uniform over its candidates), then the quantile of that many men;
* **means among recoverers**: sample mean and SD of the same number of recoverers (the SD is
  always "reported" in the simulation);
* **median not reached by t**: kept when fewer than half of the simulated men recovered by
  :math:`t`, else reported as the count recovered by :math:`t`;
* **individual times**: censored at the largest time of the arm;
* **counts with an unreported denominator or time**: the denominator is drawn from the
  denominators the real row admitted and the time from the follow-up grid, both uniformly; the
  simulated percentage is printed at the row's precision and the model recomputes what it admits.

The likelihood uses approximations (a quantile as an order statistic with interpolated rank, the
normal "median not reached" term, the normal mean of recoverers, the marginalisation over printed
percentages); the simulation is the process they approximate, so SBC here checks the
approximations as well as the sampler: a non-uniform rank says one of them, or the sampler,
distorts the posterior of that quantity. It has found one: an earlier quantile term (a fractional
binomial without the Jacobian of the quantile) put the Weibull shape's posterior below the truth
(mean fractional rank 0.76 over 30 replications); see
:func:`trt_recovery.survival.likelihood.quantile_logp`.

Replications run through Dask distributed (:mod:`trt_recovery.parallel`). ``make sbc`` writes
``survival_sbc_ranks.csv``, ``survival_sbc_uniformity.{csv,md,tex}`` and the figure
``survival_sbc_ecdf.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from trt_recovery import paths
from trt_recovery.config import AnalysisConfig, config_identity, load_config
from trt_recovery.models import ModelData, get_model
from trt_recovery.survival.families import Family, get_family

#: Sampler settings of one SBC refit (reduced from the main fit's 4 x 3000; each replication has its
#: own seed). Measured 2026-11-29 with 2 Dask workers on 2 cores: median 108 s per replication per
#: worker (about 35 s compiling its own graph, about 15 s sampling, the rest slowed by the other
#: worker), so 100 replications took about 90 minutes; the 200 of 2026-11-29 took 90 + 108 minutes
#: (two runs, the second resumed; median 109 s per replication per worker). Ranks use
#: THIN-thinned draws to reduce autocorrelation (100 draws per replication).
SBC_SAMPLER = {"chains": 1, "draws": 500, "tune": 500, "cores": 1}
THIN = 5
DEFAULT_REPLICATIONS = 200
#: Replication ``i`` simulates with seed ``seed + 1 + i`` and refits with ``seed + REFIT_SEED_OFFSET + i``.
REFIT_SEED_OFFSET = 100_000


# ------------------------------------------------------------------------------------------------
# Truth and simulated data


def prior_truths(config: AnalysisConfig, md: ModelData, n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` draws from the prior of every free variable, of each arm's linear predictors and of
    each observation's (threshold-shifted) predictors."""
    import pymc as pm

    from trt_recovery.models.survival_cure import OBSERVATIONS

    spec = get_model(config.model)
    model = spec.build(md, {**spec.default_priors, **config.priors}, predict=OBSERVATIONS)
    names = [v.name for v in model.free_RVs] + [v.name for v in model.deterministics]
    with model:
        prior = pm.sample_prior_predictive(draws=n, random_seed=seed, var_names=names)
    ds = prior["prior"].to_dataset()
    return {k: ds[k].values[0] for k in ds.data_vars}  # (draw, ...)


def _draw_times(rng, fam: Family, mu: float, shape: float, eta: float, size: int) -> np.ndarray:
    t = np.asarray(fam.sample(rng, mu, shape, size), float)
    never = rng.uniform(size=size) < 1.0 / (1.0 + np.exp(-eta))
    t[never] = np.inf
    return t


def _draw_recoverers(rng, fam: Family, mu: float, shape: float, tau: float, size: int) -> np.ndarray:
    """``size`` recovery times conditional on recovery by ``tau`` (inverse-CDF sampling)."""
    f_tau = float(np.exp(fam.log_cdf(np.asarray(tau, float), np.asarray(mu, float), np.asarray(shape, float))))
    u = rng.uniform(size=size) * f_tau
    return np.asarray(fam.quantile(u, mu, shape), float)


def shape_variable(fam: Family) -> str:
    """Name of the family's shape parameter in the model (e.g. ``weibull_shape``)."""
    return fam.shape_variable


def _sample_quantile(x: np.ndarray, p: float) -> float:
    """The sample quantile; not finite when it falls among men who never recover (inf times)."""
    with np.errstate(invalid="ignore"):
        return float(np.quantile(x, p))


#: the terms :func:`simulate_terms` simulates (a term with rows outside this list is an error, not a silent drop)
SIMULATED_TERMS = ("interval_count", "quantile_time", "quantile_unknown_n", "mean_time", "not_reached",
                   "individual_time", "marginal_count", "restricted_mean")


def simulate_terms(md: ModelData, truth: dict[str, np.ndarray], i: int, fam: Family,
                   seed: int, priors: dict[str, float]) -> ModelData:
    """Model data of the real shape with every observed value simulated from truth draw ``i``."""
    from trt_recovery.models.survival_cure import FOLLOWUP_GRID, marginal_arrays

    rng = np.random.default_rng(seed)
    shape = float(truth[shape_variable(fam)][i])
    new: dict[str, list[dict]] = {k: [] for k in md.terms}

    def pred(term: str, j: int) -> tuple[float, float]:
        return float(truth[f"{term}_time_logscale"][i][j]), float(truth[f"{term}_cure_logit"][i][j])

    t = md.terms.get("interval_count")
    if t is not None and len(t):
        men: dict[tuple, np.ndarray] = {}
        for j, r in enumerate(t.itertuples()):
            mu, eta = pred("interval_count", j)
            key = (r.arm_id, r.threshold)
            if r.t0 <= 0 or key not in men:
                men[key] = _draw_times(rng, fam, mu, shape, eta, int(r.at_risk))
            times = men[key]
            at_risk = int(np.sum(times > r.t0))
            events = int(np.sum((times > r.t0) & (times <= r.t1)))
            new["interval_count"].append({**r._asdict(), "at_risk": at_risk, "events": events})
    t = md.terms.get("quantile_time")
    if t is not None and len(t):
        arm_tmax = _arm_max_times(md)
        sample: dict[tuple, np.ndarray] = {}
        for j, r in enumerate(t.itertuples()):
            mu, eta = pred("quantile_time", j)
            key = (r.arm_id, r.threshold, r.over_all, r.size)
            if key not in sample:
                n = max(1, int(round(r.size)))
                sample[key] = (_draw_times(rng, fam, mu, shape, eta, n) if r.over_all
                               else _draw_recoverers(rng, fam, mu, shape, r.tau, n))
            q = _sample_quantile(sample[key], r.p)
            if np.isfinite(q):
                new["quantile_time"].append({**r._asdict(), "value": max(q, 1e-3)})
            elif r.p == 0.5:  # the simulated median over all men is not reached
                new.setdefault("not_reached", []).append({
                    "outcome_id": r.outcome_id, "arm_id": r.arm_id, "threshold": r.threshold,
                    "t": arm_tmax.get(r.arm_id, 24.0), "size": r.size, "weight": 1.0})
    t = md.terms.get("quantile_unknown_n")
    if t is not None and len(t):
        from trt_recovery.models.survival_cure import quantile_size_arrays

        arm_tmax = _arm_max_times(md)
        arr = quantile_size_arrays(t, priors)
        for j, r in enumerate(t.itertuples()):
            mu, eta = pred("quantile_unknown_n", j)
            w = np.exp(arr["log_w"][j])
            n = max(1, int(rng.choice(arr["sizes"][j], p=w / w.sum())))  # the number of men, from its prior
            x = (_draw_times(rng, fam, mu, shape, eta, n) if r.over_all
                 else _draw_recoverers(rng, fam, mu, shape, r.tau, n))
            q = _sample_quantile(x, r.p)
            if np.isfinite(q):
                new["quantile_unknown_n"].append({**r._asdict(), "value": max(q, 1e-3)})
            elif r.p == 0.5:
                new.setdefault("not_reached", []).append({
                    "outcome_id": r.outcome_id, "arm_id": r.arm_id, "threshold": r.threshold,
                    "t": arm_tmax.get(r.arm_id, 24.0), "size": float(n), "weight": 1.0})
    t = md.terms.get("mean_time")
    if t is not None and len(t):
        for j, r in enumerate(t.itertuples()):
            mu, _ = pred("mean_time", j)
            x = _draw_recoverers(rng, fam, mu, shape, r.tau, max(2, int(round(r.size))))
            new["mean_time"].append({**r._asdict(), "value": float(np.mean(x)), "sd_reported": float(np.std(x, ddof=1)),
                                     "has_sd": 1, "sd_source": "simulated"})
    t = md.terms.get("not_reached")
    if t is not None and len(t):
        for j, r in enumerate(t.itertuples()):
            mu, eta = pred("not_reached", j)
            n = max(1, int(round(r.size)))
            times = _draw_times(rng, fam, mu, shape, eta, n)
            k = int(np.sum(times <= r.t))
            if k < 0.5 * n:
                new["not_reached"].append(r._asdict())
            else:
                new["interval_count"].append({"outcome_id": r.outcome_id, "arm_id": r.arm_id, "threshold": r.threshold,
                                              "t0": 0.0, "t1": r.t, "at_risk": n, "events": k, "weight": 1.0})
    t = md.terms.get("individual_time")
    if t is not None and len(t):
        horizon = t.groupby(["arm_id", "threshold"])["time"].max()
        for j, r in enumerate(t.itertuples()):
            mu, eta = pred("individual_time", j)
            c = float(horizon.loc[(r.arm_id, r.threshold)])
            x = float(_draw_times(rng, fam, mu, shape, eta, 1)[0])
            new["individual_time"].append({**r._asdict(), "time": max(min(x, c), 1e-3), "event": int(x <= c)})
    t = md.terms.get("marginal_count")
    if t is not None and len(t):
        arrays = marginal_arrays(t, priors)
        for j, r in enumerate(t.itertuples()):
            mu, eta = pred("marginal_count", j)
            ok = np.isfinite(arrays["log_w"][j])
            dens = np.unique(arrays["at_risk"][j][ok]).astype(int)
            n = int(rng.choice(dens))
            tt = float(rng.choice(arrays["t_grid"][j][:FOLLOWUP_GRID]))
            times = _draw_times(rng, fam, mu, shape, eta, n)
            k = int(np.sum(times <= tt))
            row = r._asdict()
            if not pd.isna(r.n):  # a known count with an unknown time: the count is simulated
                row.update(n=float(n), events=float(k), proportion=k / n)
            else:  # an unknown denominator: the printed percentage is simulated
                d = 0 if pd.isna(r.decimals) else int(r.decimals)
                row.update(proportion=round(100.0 * k / n, d) / 100.0)
            new["marginal_count"].append(row)
    t = md.terms.get("restricted_mean")
    if t is not None and len(t):
        from trt_recovery.models.survival_cure import restricted_mean_arrays
        from trt_recovery.survival.likelihood import restricted_mean

        arrays = restricted_mean_arrays(t, priors)
        for j, r in enumerate(t.itertuples()):
            mu, eta = pred("restricted_mean", j)
            w = np.exp(arrays["log_w"][j])
            tau = float(rng.choice(arrays["tau_grid"][j], p=w / w.sum()))  # the horizon, from its prior
            rm = float(restricted_mean(tau, mu, shape, -np.logaddexp(0, -eta), -np.logaddexp(0, eta), fam))
            new["restricted_mean"].append({**r._asdict(), "value": rm + r.se * rng.standard_normal()})
    unhandled = sorted(k for k, v in md.terms.items() if len(v) and k not in SIMULATED_TERMS)
    if unhandled:
        raise NotImplementedError(f"simulate_terms: no simulation for term(s) {unhandled}")
    terms = {}
    coords = dict(md.coords)
    for name in set(md.terms) | set(new):
        frame = pd.DataFrame(new.get(name, []))
        if "Index" in frame:
            frame = frame.drop(columns="Index")
        frame = frame.reset_index(drop=True)
        terms[name] = frame
        coords[f"{name}_obs"] = (frame["outcome_id"].astype(str).add("#").add(frame.index.astype(str)).tolist()
                                 if len(frame) else [])
    return replace(md, terms=terms, coords=coords)


def _arm_max_times(md: ModelData) -> dict[str, float]:
    """Largest time any term of each arm reports (the horizon of a simulated 'not reached')."""
    out: dict[str, float] = {}
    for name, col in (("interval_count", "t1"), ("not_reached", "t"), ("individual_time", "time")):
        t = md.terms.get(name)
        if t is not None and len(t):
            for arm, v in t.groupby("arm_id")[col].max().items():
                out[arm] = max(out.get(arm, 0.0), float(v))
    return out


# ------------------------------------------------------------------------------------------------
# Ranks


def ranked_quantities(post: dict[str, np.ndarray], md: ModelData, fam: Family) -> dict[str, np.ndarray]:
    """The quantities ranked, from a mapping of variable -> draws (draw first): the intercepts,
    shape, study SDs, each sampled strategy effect, and each arm's P(recovered by 12 months) for
    the first arm of every strategy (a headline quantity on the scale users read)."""
    shape_var = shape_variable(fam)
    out = {}
    for name in ("time_intercept", "cure_intercept", shape_var, "study_time_sd", "study_cure_sd"):
        if name in post:
            out[name] = np.asarray(post[name]).reshape(len(post[name]), -1)[:, 0]
    for var in ("strategy_time", "strategy_cure"):
        if var in post:
            levels = list(md.coords.get("strategy", []))
            arr = np.asarray(post[var])
            for k in range(arr.shape[1]):
                label = levels[k] if k < len(levels) else str(k)
                out[f"{var}[{label}]"] = arr[:, k]
    arms = md.arms.reset_index()
    first = arms.drop_duplicates("strategy")
    mu, eta, shape = np.asarray(post["arm_time_logscale"]), np.asarray(post["arm_cure_logit"]), np.asarray(post[shape_var])
    for idx, r in zip(first.index, first.itertuples(), strict=True):
        log_f = fam.log_cdf(np.full_like(mu[:, idx], 12.0), mu[:, idx], shape.reshape(-1))
        out[f"p_recovered_12m[{r.strategy}: {r.arm_id}]"] = np.exp(log_f) / (1.0 + np.exp(eta[:, idx]))
    return out


@dataclass(frozen=True)
class Replication:
    """One SBC replication (a Dask task): config, simulated model data, truth and seed."""

    index: int
    config: AnalysisConfig
    md: ModelData
    truth: dict[str, float | np.ndarray]
    seed: int
    sampler: dict[str, Any] | None = None


def run_replication(rep: Replication) -> dict[str, Any]:
    """Fit one simulated data set and return the rank of each true quantity among thinned draws."""
    from trt_recovery.fitting import fit_analysis

    t0 = time.perf_counter()
    fit = fit_analysis(rep.config, model_data=rep.md, seed=rep.seed, save=False, raise_on_failure=False,
                       sampler_overrides=rep.sampler or SBC_SAMPLER, log_likelihood=False, prior_draws=0)
    post = fit.posterior.stack(sample=("chain", "draw")).transpose("sample", ...)
    keep = np.arange(0, post.sizes["sample"], THIN)
    fam = get_family(get_model(rep.config.model).family)
    pdraws = {k: post[k].values[keep] for k in post.data_vars}
    q_post = ranked_quantities(pdraws, rep.md, fam)
    q_true = ranked_quantities({k: np.asarray(v)[None, ...] for k, v in rep.truth.items()}, rep.md, fam)
    ranks = {k: int(np.sum(q_post[k] < q_true[k][0])) for k in q_true if k in q_post}
    return {"replication": rep.index, "seed": rep.seed, "n_draws": int(len(keep)), "passed": fit.passed,
            "divergences": int(fit.convergence.get("divergences", 0)), "seconds": time.perf_counter() - t0,
            "ranks": ranks}


# ------------------------------------------------------------------------------------------------
# Running and summarising


def replications(config: AnalysisConfig, n: int, seed: int, sampler: dict[str, Any] | None = None) -> list[Replication]:
    from trt_recovery.harmonise import harmonise
    from trt_recovery.validate import load_dataset

    spec = get_model(config.model)
    md = spec.prepare(harmonise(load_dataset()).outcomes, config.data)
    fam = get_family(spec.family)
    priors = {**spec.default_priors, **config.priors}
    truths = prior_truths(config, md, n, seed)
    reps = []
    for i in range(n):
        truth = {k: v[i] for k, v in truths.items()}
        sim = simulate_terms(md, truths, i, fam, seed + 1 + i, priors)
        reps.append(Replication(i, config, sim, truth, seed + REFIT_SEED_OFFSET + i, sampler))
    return reps


def uniformity(ranks: pd.DataFrame, n_draws: int, prob: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Per quantity: whether the ECDF of fractional ranks stays inside the simultaneous ``prob``
    band of uniformity (``arviz_stats.ecdf_utils.ecdf_pit``), the largest excursion, and a chi-square
    test of rank counts in 10 bins."""
    from arviz_stats.ecdf_utils import ecdf_pit
    from scipy import stats

    rng = np.random.default_rng(seed)
    rows = []
    for q, g in ranks.groupby("quantity", sort=False):
        r = g["rank"].to_numpy(float)
        pit = (r + rng.uniform(size=len(r))) / (n_draws + 1)
        x, ecdf, lo, hi = ecdf_pit(pit, prob, 1000, rng=np.random.default_rng(seed))
        outside = (ecdf < lo) | (ecdf > hi)
        counts = np.histogram(pit, bins=10, range=(0, 1))[0]
        rows.append({"quantity": q, "replications": len(r), "inside_band": not bool(outside.any()),
                     "max_ecdf_difference": float(np.max(np.abs(ecdf - x))),
                     "chi2_p": float(stats.chisquare(counts).pvalue),
                     "mean_fractional_rank": float(np.mean(pit))})
    return pd.DataFrame(rows)


def ecdf_figure(ranks: pd.DataFrame, n_draws: int, prob: float = 0.95, seed: int = 0):
    """ECDF-difference plot of fractional ranks, one panel per quantity, with simultaneous bands."""
    import matplotlib.pyplot as plt
    from arviz_stats.ecdf_utils import ecdf_pit

    qs = list(dict.fromkeys(ranks["quantity"]))
    ncol = 4
    nrow = int(np.ceil(len(qs) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.4 * nrow), squeeze=False, sharey=True)
    rng = np.random.default_rng(seed)
    for ax, q in zip(axes.ravel(), qs, strict=False):
        r = ranks.loc[ranks["quantity"] == q, "rank"].to_numpy(float)
        pit = (r + rng.uniform(size=len(r))) / (n_draws + 1)
        x, ecdf, lo, hi = ecdf_pit(pit, prob, 1000, rng=np.random.default_rng(seed))
        ax.fill_between(x, lo - x, hi - x, color="0.85", step="post", label=f"{prob:.0%} simultaneous band")
        ax.step(x, ecdf - x, where="post", color="#0072B2")
        ax.axhline(0, color="0.4", lw=0.6)
        ax.set_title(q.replace("[", "\n[", 1), fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(qs):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("ECDF - uniform", fontsize=8)
    for ax in axes[-1, :]:
        ax.set_xlabel("fractional rank", fontsize=8)
    fig.suptitle(f"SBC of the survival model at the real data's shape ({len(r)} replications)", fontsize=10)
    fig.tight_layout()
    return fig


def rank_table(results: list, config: AnalysisConfig) -> pd.DataFrame:
    """One row per replication and quantity from :func:`run_replication` results (failed tasks
    skipped), stamped with the model and config identity they belong to."""
    from trt_recovery.parallel import TaskError

    rows = []
    for res in results:
        if isinstance(res, TaskError) or res is None:
            continue
        for q, rank in res["ranks"].items():
            rows.append({"replication": res["replication"], "seed": res["seed"], "quantity": q, "rank": rank,
                         "n_draws": res["n_draws"], "passed": res["passed"], "divergences": res["divergences"],
                         "seconds": res["seconds"]})
    ranks = pd.DataFrame(rows)
    if len(ranks):  # which model and config the ranks belong to (sbc_summary flags stale results)
        ranks["model_identity"] = get_model(config.model).identity()
        ranks["config_identity"] = config_identity(config)
    return ranks


def run(name: str = "survival", n: int = DEFAULT_REPLICATIONS, seed: int = 20261129, scheduler: str | None = None,
        n_workers: int | None = None, sampler: dict[str, Any] | None = None,
        resume: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, list]:
    """Run replications ``0 .. n-1`` (with ``resume``, only those the saved ranks lack) and write the
    results. A resumed run regenerates the same truths and simulated data, so its ranks are those a
    single run of ``n`` would have given; see :func:`resumable_ranks` for what it checks first."""
    from trt_recovery.parallel import TaskError, run_tasks

    config = load_config(paths.analysis_config(name))
    t0 = time.perf_counter()
    sampler = {**SBC_SAMPLER, **(sampler or {})}
    earlier = resumable_ranks(name, config, seed, sampler) if resume else pd.DataFrame()
    done = set(earlier["replication"]) if len(earlier) else set()
    reps = [r for r in replications(config, n, seed, sampler) if r.index not in done]
    if done:
        print(f"SBC '{name}': resuming; {len(done)} replications saved, {len(reps)} to run")
    paths.TABLES_DIR.mkdir(parents=True, exist_ok=True)
    partial = paths.TABLES_DIR / f"{name}_sbc_ranks.partial.csv"
    finished: list = []

    def with_earlier(ranks: pd.DataFrame) -> pd.DataFrame:  # a resumed run's ranks include the saved ones
        frames = [f for f in (earlier, ranks) if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else ranks

    def keep(i: int, res) -> None:  # a run stopped early keeps the replications it finished
        finished.append(res)
        if len(finished) % 10 == 0:
            with_earlier(rank_table(finished, config)).to_csv(partial, index=False)

    results = run_tasks(run_replication, reps, labels=[f"replication {r.index}" for r in reps], scheduler=scheduler,
                        n_workers=n_workers, on_result=keep)
    wall = time.perf_counter() - t0
    failures = [res for res in results if isinstance(res, TaskError)]
    ranks = with_earlier(rank_table(results, config))
    partial.unlink(missing_ok=True)
    summary, out = write_results(name, ranks)
    summary.attrs["wall_seconds"] = wall
    reps_ok = ranks.drop_duplicates("replication") if len(ranks) else ranks
    print(f"SBC '{name}': {len(results)} replications in {wall / 60:.1f} min wall"
          + (f" ({len(reps_ok)} with the saved ones)" if done else "") + " "
          f"({len(failures)} raised; {int((~reps_ok['passed']).sum()) if len(reps_ok) else 0} failed their "
          f"convergence checks, kept and counted)")
    for f in failures:
        print(f"  {f.label}: {f.error}")
    return ranks, summary, out


def resumable_ranks(name: str, config: AnalysisConfig, seed: int, sampler: dict[str, Any]) -> pd.DataFrame:
    """The saved ranks of ``name`` if a run with ``seed`` and ``sampler`` may extend them.

    Raises ``ValueError`` (naming the file and what differs) when they belong to another model or
    config, another base seed, or another number of thinned draws: mixing those would not be one SBC.
    The ranks do not record the number of tuning steps: resume with the ``tune`` the run began with.
    """
    path = paths.TABLES_DIR / f"{name}_sbc_ranks.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no saved SBC ranks to resume (run `make sbc` first)")
    ranks = pd.read_csv(path)
    stale = _stale(name, ranks)
    if stale:
        raise ValueError(f"{path}: cannot resume: {stale}")
    reps = ranks.drop_duplicates("replication")
    offsets = reps["seed"] - reps["replication"]
    if not (offsets == seed + REFIT_SEED_OFFSET).all():
        raise ValueError(f"{path}: cannot resume: the saved replications were run with base seed(s) "
                         f"{sorted(set(offsets - REFIT_SEED_OFFSET))}, not {seed}")
    n_draws = len(range(0, sampler["chains"] * sampler["draws"], THIN))
    if not (reps["n_draws"] == n_draws).all():
        raise ValueError(f"{path}: cannot resume: the saved replications ranked {sorted(set(reps['n_draws']))} "
                         f"thinned draws, these sampler settings give {n_draws}")
    return ranks


def write_results(name: str, ranks: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    """Save the ranks, their uniformity table and the ECDF figure (what :func:`sbc_summary` reads)."""
    from trt_recovery.report import save_figure
    from trt_recovery.tables import write_table

    n_draws = int(ranks["n_draws"].iloc[0]) if len(ranks) else 0
    summary = uniformity(ranks, n_draws) if len(ranks) else pd.DataFrame()
    paths.TABLES_DIR.mkdir(parents=True, exist_ok=True)
    ranks.to_csv(paths.TABLES_DIR / f"{name}_sbc_ranks.csv", index=False)
    out = write_table(summary, f"{name}_sbc_uniformity", float_format="{:.3g}")
    if len(ranks):
        out += save_figure(ecdf_figure(ranks, n_draws), f"{name}_sbc_ecdf")
    return summary, out


def summarise_partial(name: str = "survival") -> tuple[pd.DataFrame, list]:
    """Turn the ranks a stopped run saved (``<name>_sbc_ranks.partial.csv``) into the results, so a
    run cut short still reports what it did (its replication count says how far it got)."""
    partial = paths.TABLES_DIR / f"{name}_sbc_ranks.partial.csv"
    if not partial.exists():
        raise FileNotFoundError(f"{partial}: no partial SBC result (it is written every 10 replications of a run)")
    summary, out = write_results(name, pd.read_csv(partial))
    partial.unlink()
    return summary, out


def sbc_summary(name: str = "survival") -> dict[str, Any] | None:
    """The last SBC result of ``name`` from its saved tables (None when ``make sbc`` has not run):
    the uniformity table and a paragraph in words."""
    table_path = paths.TABLES_DIR / f"{name}_sbc_uniformity.csv"
    ranks_path = paths.TABLES_DIR / f"{name}_sbc_ranks.csv"
    if not table_path.exists() or not ranks_path.exists():
        return None
    table = pd.read_csv(table_path)
    ranks = pd.read_csv(ranks_path)
    reps = ranks.drop_duplicates("replication")
    outside = table.loc[~table["inside_band"].astype(bool), "quantity"].tolist()
    text = (f"{len(reps)} replications ({int(reps['passed'].sum())} passed the main fit's convergence gates, which "
            f"a short SBC run is not expected to meet (one chain cannot give an R-hat); "
            f"{int((reps['divergences'] > 0).sum())} had divergences; "
            f"{int(reps['n_draws'].iloc[0])} thinned draws each; median {reps['seconds'].median():.0f} s per fit). "
            f"{len(table) - len(outside)} of {len(table)} quantities have rank ECDFs inside the simultaneous "
            f"95% band" + (f"; outside: {', '.join(outside)}." if outside else "."))
    if len(reps) < DEFAULT_REPLICATIONS:
        text += (f" With fewer than {DEFAULT_REPLICATIONS} replications the bands are wide: only gross "
                 "miscalibration shows.")
    stale = _stale(name, ranks)
    if stale:
        text = f"STALE ({stale}): these ranks describe an earlier model; rerun `make sbc`. " + text
    return {"table": table, "text": text, "replications": len(reps), "stale": stale}


def _stale(name: str, ranks: pd.DataFrame) -> str:
    """Why saved SBC ranks no longer describe the current model and config ('' when they do)."""
    if "model_identity" not in ranks:
        return "the ranks do not record the model they were computed with"
    try:
        config = load_config(paths.analysis_config(name))
    except Exception:  # noqa: BLE001 - a missing or broken config: say so rather than fail the notebook
        return f"no readable config for '{name}'"
    if ranks["model_identity"].iloc[0] != get_model(config.model).identity():
        return "the model's code changed since"
    if ranks["config_identity"].iloc[0] != config_identity(config):
        return "the analysis config changed since"
    return ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trt_recovery.survival.sbc", description=__doc__.splitlines()[0])
    ap.add_argument("--analysis", default="survival")
    ap.add_argument("--replications", type=int, default=DEFAULT_REPLICATIONS)
    ap.add_argument("--seed", type=int, default=20261129)
    ap.add_argument("--scheduler", default=None)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--chains", type=int, default=SBC_SAMPLER["chains"])
    ap.add_argument("--draws", type=int, default=SBC_SAMPLER["draws"])
    ap.add_argument("--tune", type=int, default=SBC_SAMPLER["tune"])
    ap.add_argument("--resume", action="store_true",
                    help="run only the replications the saved ranks lack (same seed, model and config) and merge")
    ap.add_argument("--from-partial", action="store_true",
                    help="summarise the ranks a stopped run saved instead of running replications")
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    if args.from_partial:
        summary, out = summarise_partial(args.analysis)
        print(summary.to_string(index=False))
        for p in out:
            print(f"  {p}")
        return 0
    _, summary, out = run(args.analysis, args.replications, args.seed, args.scheduler, args.workers,
                          {"chains": args.chains, "draws": args.draws, "tune": args.tune}, resume=args.resume)
    if len(summary):
        print(summary.to_string(index=False))
    for p in out:
        print(f"  {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
