"""Benchmark sampler backends on the real data (``make bench``).

For each analysis and each backend (PyMC's NUTS, nutpie with each of its mass-matrix adaptations
written ``nutpie:diag`` and ``nutpie:low_rank``, numpyro), one fresh process prepares the
model from the real dataset, compiles it and samples with the analysis' settings and seed. Reported:
compile time (the backend's own compilation of log-density and gradient, timed alone), wall time of
the sampling call (for nutpie, sampling alone: the model compiled first is reused, see
:mod:`trt_recovery.compiled`; before, the sampling call compiled it again), minimum bulk ESS, ESS per second of sampling wall time, peak resident memory of
the process, and whether the convergence checks passed. Timings are measurements on this machine,
never asserted in tests.

``--outcomes FILE`` restricts each analysis to the outcome rows whose ids the file lists (separated
by white space; ``#`` starts a comment): the same rows an older commit's analysis used, so that a
sampler change is compared on the same data (``analysis/reference/survival_outcomes_6360c78.txt``
holds the rows of the main survival analysis at 6360c78, the commit issue 16 measured first). The
rows the current model can use of them are reported (``rows_used``); the model reports the others
with its reasons, as always. The table is written as ``bench_<file name>``, beside ``bench``.

``--predict`` times ``trt-recovery predict`` for one profile in fresh processes, before and after
in one run: through the model's graph (``--full``: the sampler stack loads, the model is rebuilt) and
from the calculator bundle (numpy only; ``make site`` builds the bundle). Median and range of
:data:`PREDICT_REPEATS` runs each.

Run: ``python -m trt_recovery.bench [ANALYSIS ...] [--backends pymc,nutpie:diag,nutpie:low_rank,numpyro]
[--seeds N] [--outcomes FILE] [--predict]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from trt_recovery import paths
from trt_recovery.config import BACKENDS, MASS_MATRICES, sampler_choice_error

MAIN_ANALYSES = ("success_rate", "survival")
#: what ``make bench`` compares: each backend, nutpie once per mass-matrix adaptation
BENCH_BACKENDS = tuple(f"{b}:{m}" for b in BACKENDS for m in (MASS_MATRICES if b == "nutpie" else ("diag",)))


def backend_setting(name: str) -> dict:
    """``backend[:mass_matrix]`` (as ``--backends`` takes it) as sampler settings; the diagonal when
    the adaptation is not named."""
    backend, _, mass_matrix = name.partition(":")
    mass_matrix = mass_matrix or "diag"
    error = sampler_choice_error(backend, mass_matrix)
    if error:
        raise SystemExit(f"backend {name!r}: {error}")
    return {"backend": backend, "mass_matrix": mass_matrix}


def _compile_seconds(model, backend: str) -> float:
    import numpy as np

    t = time.perf_counter()
    if backend == "pymc":
        model.compile_logp()(model.initial_point())
        model.compile_dlogp()(model.initial_point())
    elif backend == "nutpie":  # kept in the process's cache: the sampling call reuses it (so its time is sampling)
        from trt_recovery.compiled import CACHE

        CACHE.compiled_for(model)
    else:
        import jax
        from pymc.sampling.jax import get_jaxified_logp

        logp = get_jaxified_logp(model)
        point = [np.asarray(model.initial_point()[v.name]) for v in model.value_vars]
        jax.block_until_ready(jax.jit(jax.value_and_grad(lambda *x: logp(x)))(*point))
    return time.perf_counter() - t


def step_stats(posterior) -> dict:
    """Median step size and mean leapfrog steps per draw after warm-up, from the sample stats
    (``step_size`` and ``n_steps``, or ``tree_size`` / ``num_steps`` as some backends name it);
    NaN when the backend does not record them."""
    import numpy as np

    ss = posterior["sample_stats"]
    ss = ss.to_dataset() if hasattr(ss, "to_dataset") else ss
    steps = next((ss[n] for n in ("n_steps", "tree_size", "num_steps") if n in ss), None)
    return {"step_size": round(float(np.median(ss["step_size"].values)), 4) if "step_size" in ss else float("nan"),
            "leapfrog_per_draw": round(float(np.mean(steps.values)), 1) if steps is not None else float("nan")}


def read_outcome_ids(path, dataset_ids) -> list[str]:
    """The outcome ids listed in ``path`` (white space separated, ``#`` to the end of a line is a
    comment); every one must be an outcome of the dataset (``dataset_ids``), or the error names the
    file and the ids it does not know."""
    text = Path(path).read_text()
    ids = [tok for line in text.splitlines() for tok in line.split("#", 1)[0].split()]
    if not ids:
        raise SystemExit(f"{path}: no outcome id listed")
    unknown = sorted(set(ids) - set(dataset_ids))
    if unknown:
        raise SystemExit(f"{path}: outcome ids not in the dataset: {', '.join(unknown)}")
    return ids


def run_one(analysis: str, backend: str, seed: int | None = None, outcomes: str | None = None) -> dict:
    """Benchmark one backend on one analysis in this process (called in a fresh subprocess);
    ``outcomes``: a file of outcome ids the analysis is restricted to (:func:`read_outcome_ids`)."""
    from trt_recovery.config import load_config
    from trt_recovery.fitting import check_convergence, sample
    from trt_recovery.harmonise import harmonise
    from trt_recovery.models import get_model
    from trt_recovery.validate import load_dataset

    cfg = load_config(analysis)
    spec = get_model(cfg.model)
    rows = harmonise(load_dataset()).outcomes
    if outcomes is not None:
        rows = rows[rows["outcome_id"].isin(read_outcome_ids(outcomes, rows["outcome_id"]))]
    data = spec.prepare(rows, cfg.data)
    model = spec.build(data, cfg.priors)
    setting = backend_setting(backend)
    compile_s = _compile_seconds(model, setting["backend"])
    sampler = replace(cfg.sampler, **setting, **({"seed": seed} if seed is not None else {}))
    t = time.perf_counter()
    posterior = sample(model, sampler)
    wall = time.perf_counter() - t
    conv = check_convergence(posterior, [v.name for v in model.free_RVs], cfg.checks, sampler.max_treedepth)
    return {
        "analysis": analysis,
        "backend": f"{sampler.backend}:{sampler.mass_matrix}",
        "seed": sampler.seed,
        "rows_used": len(data.used),
        "compile_s": round(compile_s, 2),
        "sampling_wall_s": round(wall, 2),
        "min_bulk_ess": round(conv.ess_bulk_min, 1),
        "min_ess_per_s": round(conv.ess_bulk_min / wall, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rhat_max": round(conv.rhat_max, 4),
        "divergences": conv.divergences,
        **step_stats(posterior),
        "checks_passed": conv.passed,
        "draws": f"{sampler.chains} x {sampler.draws} (+{sampler.tune} tune)",
    }


PREDICT_REPEATS = 5
PREDICT_ARGS = ["predict", "--strategy", "hcg_serm", "--trt-months", "60", "--age", "38", "--times", "6,12"]


def predict_timing(repeats: int = PREDICT_REPEATS) -> pd.DataFrame:
    """Wall time of ``trt-recovery predict`` (a fresh process each run), through the graph and from
    the bundle; refuses to time the bundle path when the bundle is missing or out of date."""
    from trt_recovery.survival.calculator import fresh_bundle

    if fresh_bundle("survival") is None:
        raise SystemExit("no current calculator bundle for 'survival': run `make site` first")
    cli = [sys.executable, "-m", "trt_recovery.cli"]
    rows = []
    for label, extra in (("through the graph (--full)", ["--full"]), ("calculator bundle", [])):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            proc = subprocess.run(cli + PREDICT_ARGS + extra, capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                raise SystemExit(f"predict failed: {proc.stderr.strip()}")
        s = pd.Series(times)
        rows.append({"path": label, "runs": repeats, "median_s": round(s.median(), 3), "min_s": round(s.min(), 3),
                     "max_s": round(s.max(), 3)})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trt_recovery.bench", description=__doc__)
    parser.add_argument("analyses", nargs="*", help="analysis names (default: the two main analyses)")
    parser.add_argument("--backends", default=",".join(BENCH_BACKENDS))
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--predict", action="store_true", help="time `trt-recovery predict` (graph vs bundle) only")
    parser.add_argument("--seeds", type=int, default=1,
                        help="run each backend with the config's seed and the next ones (3: does it pass on 3 seeds?)")
    parser.add_argument("--seed", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--outcomes", default=None,
                        help="file of outcome ids: restrict each analysis to these rows (compare on an older commit's data)")
    args = parser.parse_args(argv)
    if args.predict:
        from trt_recovery.tables import write_table

        df = predict_timing()
        out = write_table(df, "bench_predict")
        print(df.to_markdown(index=False))
        print(f"written to {', '.join(str(p.relative_to(paths.ROOT)) for p in out)}")
        return 0
    backends = args.backends.split(",")
    for b in backends:
        backend_setting(b)  # refuses an unknown name before any run
    if args.one:
        print(json.dumps(run_one(args.analyses[0], backends[0], args.seed, args.outcomes)))
        return 0
    analyses = args.analyses or list(MAIN_ANALYSES)
    rows = []
    from trt_recovery.config import load_config

    for a in analyses:
        base_seed = load_config(a).sampler.seed
        for b in backends:
            for seed in range(base_seed, base_seed + args.seeds):
                print(f"==> bench {a} with {b}, seed {seed}", flush=True)
                proc = subprocess.run(
                    [sys.executable, "-m", "trt_recovery.bench", a, "--backends", b, "--one", "--seed", str(seed),
                     *(["--outcomes", args.outcomes] if args.outcomes else [])],
                    capture_output=True,
                    text=True,
                )
                if proc.returncode != 0:
                    rows.append({"analysis": a, "backend": b, "seed": seed, "error": proc.stderr.strip().splitlines()[-1]})
                    continue
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    df = pd.DataFrame(rows)
    from trt_recovery.tables import write_table

    out = write_table(df, "bench" if args.outcomes is None else f"bench_{Path(args.outcomes).stem}")
    print(df.to_markdown(index=False))
    print(f"written to {', '.join(str(p.relative_to(paths.ROOT)) for p in out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
