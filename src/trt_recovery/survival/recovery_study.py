"""Parameter recovery of the survival model on simulated mixed-format data.

``python -m trt_recovery.survival.recovery_study --seeds 20`` simulates ~30 studies per seed in
every reporting format the model has a term for (:data:`trt_recovery.survival.simulate.ALL_FORMATS`,
including counts without their time, percentages without their n and medians without their n),
fits the model with a seed, and records for each
parameter whether the truth lies inside the 90% posterior interval. The slow test runs one seed;
the multi-seed result is written to ``analysis/results/tables/survival_recovery.*``.

Identified quantities are compared: contrasts (strategy, population, threshold), the shape, the
study-level SDs, and the reference arm's log time scale and non-recovery logit (computed through
the fitted model's graph for the reference profile, :mod:`trt_recovery.survival.predict`).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from trt_recovery.config import parse_config
from trt_recovery.fitting import fit_analysis
from trt_recovery.survival.simulate import ALL_FORMATS, Truth, simulate_studies


def _flat(post, name, **sel):
    da = post[name]
    if sel:
        da = da.sel(**sel)
    return da.values.reshape(-1)


def recovery_table(fit, truth: Truth) -> pd.DataFrame:
    """Posterior median, 90% interval and coverage of each identified quantity."""
    from trt_recovery.survival.families import get_family
    from trt_recovery.survival.predict import Predictions, Profile

    fam = get_family(fit.spec.family)
    post = fit.posterior
    ref = Predictions(fit, [Profile(strategy="none", population="trt", threshold="any",
                                    preparation="short_ester_injection", covariates={"azoospermia": 1.0})])
    from trt_recovery.schema import load_schema

    steps = post["threshold_time_step"]
    labels = [str(x) for x in steps["threshold_segment"].values]
    to20 = steps.isel(threshold_segment=slice(0, labels.index("20") + 1)).sum("threshold_segment").values.reshape(-1)
    ladder = list(load_schema().threshold_ladder)
    items = [
        ("reference_time_logscale", ref.mu.values.reshape(-1), truth.time_intercept),
        ("reference_cure_logit", ref.eta.values.reshape(-1), truth.cure_intercept),
        (fam.shape_variable, _flat(post, fam.shape_variable), truth.shape),
        ("threshold_time_any_to_20", to20, sum(truth.threshold_time_step.get(t, 0.0) for t in ladder[1: ladder.index("20") + 1])),
        ("study_time_sd", _flat(post, "study_time_sd"), truth.study_time_sd),
        ("study_cure_sd", _flat(post, "study_cure_sd"), truth.study_cure_sd),
    ]
    for s, v in truth.strategy_time.items():
        items.append((f"strategy_time[{s}]", _flat(post, "strategy_time", strategy=s), v))
    for s, v in truth.strategy_cure.items():
        items.append((f"strategy_cure[{s}]", _flat(post, "strategy_cure", strategy=s), v))
    for p, v in truth.population_time.items():
        items.append((f"population_time[{p}]", _flat(post, "population_time", population=p), v))
    rows = []
    for name, draws, true in items:
        lo, hi = np.quantile(draws, [0.05, 0.95])
        rows.append({"parameter": name, "truth": true, "posterior_median": float(np.median(draws)),
                     "q05": float(lo), "q95": float(hi), "covered": bool(lo <= true <= hi)})
    return pd.DataFrame(rows)


def run_seed(seed: int, n_studies: int = 30, family: str = "weibull", draws: int = 1500, tune: int = 1500,
             backend: str = "nutpie") -> tuple[pd.DataFrame, dict]:
    df, truth = simulate_studies(n_studies, seed=seed, family=family, formats=ALL_FORMATS)
    cfg = parse_config(
        {"name": "recovery", "model": f"survival_cure_{family}",
         "sampler": {"seed": seed, "backend": backend, "draws": draws, "tune": tune, "chains": 4,
                     "target_accept": 0.95}},
        "recovery.yaml",
    )
    fit = fit_analysis(cfg, harmonised_outcomes=df, save=False, raise_on_failure=False)
    table = recovery_table(fit, truth)
    table.insert(0, "seed", seed)
    conv = fit.convergence
    return table, {"seed": seed, "converged": conv["passed"], "rhat_max": conv["rhat_max"],
                   "ess_bulk_min": conv["ess_bulk_min"], "divergences": conv["divergences"]}


def parameter_group(name: str) -> str:
    """The group of a parameter (``strategy_time[hcg_serm]`` -> ``strategy_time``): coverage is
    judged per group, where 20 seeds give enough intervals."""
    return name.split("[", 1)[0]


#: the window a group's coverage of 90% intervals is judged against
COVERAGE_WINDOW = (0.85, 0.95)


def group_coverage(all_t: pd.DataFrame) -> pd.DataFrame:
    """Coverage of the 90% intervals per parameter group, with what chance alone allows.

    ``p_binomial``: two-sided binomial test of the covered count against 0.9 (a small value says
    the intervals are too wide or too narrow beyond chance). ``p_window``: the probability that a
    group of exactly calibrated intervals, as many as this one has, lands inside
    :data:`COVERAGE_WINDOW` (0.745 for 20 intervals: over 9 groups of 20-40 intervals, a perfectly
    calibrated model puts every group inside the window about 1 time in 10). ``q_bh``: the
    binomial p-values adjusted for testing every group at once (Benjamini-Hochberg, scipy's
    ``false_discovery_control``): with 9 groups, one p near 0.01 is what chance alone gives
    about one run in ten.
    """
    from scipy import stats

    g = (all_t.assign(group=all_t["parameter"].map(parameter_group)).groupby("group")["covered"]
         .agg(covered="sum", intervals="size").reset_index())
    lo, hi = COVERAGE_WINDOW
    g["coverage_90"] = g["covered"] / g["intervals"]
    g["inside_window"] = g["coverage_90"].between(lo, hi)
    g["p_binomial"] = [stats.binomtest(int(k), int(n), 0.9).pvalue for k, n in zip(g["covered"], g["intervals"], strict=True)]
    g["p_window"] = [stats.binom.cdf(np.floor(hi * n + 1e-9), n, 0.9) - stats.binom.cdf(np.ceil(lo * n - 1e-9) - 1, n, 0.9)
                     for n in g["intervals"]]
    g["q_bh"] = stats.false_discovery_control(g["p_binomial"].to_numpy(float), method="bh")
    return g[["group", "coverage_90", "intervals", "inside_window", "p_binomial", "q_bh", "p_window"]]


def write_results(tables: list[pd.DataFrame], convs: list[dict]) -> pd.DataFrame:
    """Per-seed, per-parameter and per-group coverage tables (written after every seed)."""
    from trt_recovery.tables import write_table

    all_t = pd.concat(tables, ignore_index=True)
    by_param = all_t.groupby("parameter")["covered"].agg(coverage_90="mean", seeds="size").reset_index()
    by_group = group_coverage(all_t)
    write_table(all_t, "survival_recovery_by_seed")
    write_table(by_param, "survival_recovery_coverage")
    write_table(by_group, "survival_recovery_coverage_by_group")
    write_table(pd.DataFrame(convs), "survival_recovery_convergence")
    return by_param


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--family", default="weibull")
    args = ap.parse_args(argv)
    tables, convs = [], []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        t, c = run_seed(seed, family=args.family)
        tables.append(t)
        convs.append(c)
        print(f"seed {seed}: {t.covered.mean():.0%} of parameters covered; converged={c['converged']}", flush=True)
        by_param = write_results(tables, convs)  # after every seed: a run stopped early keeps what it did
    print(by_param.to_markdown(index=False))
    all_t = pd.concat(tables, ignore_index=True)
    print(f"overall coverage of 90% intervals: {all_t.covered.mean():.1%} over {len(tables)} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
