"""Test helpers shared by the test files (data builders, a mocked sampler, hand-built posteriors).

Test files import from here, never from each other; fixtures live in ``conftest.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from trt_recovery.harmonise import HARMONISED_COLUMNS

T = TypeVar("T")


def shared_across_workers(tmp_path_factory, worker_id: str, name: str, make: Callable[[Path], T],
                          load: Callable[[Path], T]) -> T:
    """A session fixture's value built once per test run rather than once per pytest-xdist worker.

    The first worker to ask runs ``make(path)``, which writes the value to ``path`` (in the
    directory all workers of this run share) and returns it; the others wait on a file lock and
    ``load(path)`` it. A marker file written after ``make`` returns tells a finished value from one
    a failed ``make`` left half-written (that worker's error is raised there; the next one retries).
    Without xdist (``worker_id == "master"``) the value is built in a private directory.
    """
    from filelock import FileLock

    if worker_id == "master":
        return make(tmp_path_factory.mktemp("shared") / name)
    root = tmp_path_factory.getbasetemp().parent / "shared"
    root.mkdir(exist_ok=True)
    path, done = root / name, root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        if done.exists():
            return load(path)
        value = make(path)
        done.touch()
        return value


def read(d: Path, table: str) -> pd.DataFrame:
    return pd.read_csv(d / f"{table}.csv", dtype=str, keep_default_na=False)


def write(d: Path, table: str, df: pd.DataFrame) -> None:
    df.to_csv(d / f"{table}.csv", index=False)


def synthetic_tables(directory: Path, arms: list[dict], seed: int) -> None:
    """Write a valid dataset: one study per arm, each with a recovered r of n.

    ``arms`` items: ``strategy``, ``n`` and ``p`` (true recovery probability), optionally
    ``population`` (default ``trt``); events are drawn binomially with ``seed``.
    """
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    studies, arm_rows, outcomes = [], [], []
    for i, a in enumerate(arms):
        sid = f"synth{2000 + i}"
        studies.append(
            dict(study_id=sid, first_author="Synth", year=2000 + i, title=f"Synthetic study {i}", journal="None",
                 pmid=str(10000000 + i), doi="", design="case_series", population=a.get("population", "trt"), country="", duplicate_of="",
                 source_read="abstract", url="", notes="")
        )
        aid = f"{sid}_all"
        arm_rows.append(
            dict(arm_id=aid, study_id=sid, arm_label="all", parent_arm_id="", overlaps_arm_id="", strategy=a["strategy"], serm_agent="",
                 agents_doses="", n=a["n"], androgen_preparation="", androgen_dose="", androgen_duration_value="",
                 androgen_duration_stat="", androgen_duration_unit="", age_value="", age_stat="",
                 baseline_sperm_status="", n_azoospermic="", n_severe_oligozoospermic="", time_zero="",
                 source_ref=f"pmid:{10000000 + i}", source_location="abstract", notes="")
        )
        r = int(rng.binomial(a["n"], a["p"]))
        outcomes.append(
            dict(outcome_id=f"{aid}_1", arm_id=aid, outcome="recovered_count", threshold="any", time=12,
                 time_unit="months", time_stat="fixed", n=a["n"], events=r, value="", value_unit="", statistic="",
                 over="", dispersion_type="", dispersion_value="", lower="", upper="",
                 source_ref=f"pmid:{10000000 + i}", source_location="abstract", confidence="primary",
                 confidence_note="", notes="")
        )
    pd.DataFrame(studies).to_csv(directory / "studies.csv", index=False)
    pd.DataFrame(arm_rows).to_csv(directory / "arms.csv", index=False)
    pd.DataFrame(outcomes).to_csv(directory / "outcomes.csv", index=False)


def concentration_row(**kw) -> dict:
    base = {c: np.nan for c in HARMONISED_COLUMNS}
    base.update(outcome="concentration", value_unit="million/mL", confidence="primary", population="trt",
                strategy="none", threshold=np.nan, time_months=np.nan, parent_arm_id=np.nan)
    base.update(kw)
    return base



def simulate_concentration_arms(seed: int, n_arms: int = 24) -> tuple[pd.DataFrame, dict]:
    """Arms drawn from the model, each reporting one format (mean, mean+SD, median(+IQR/range))."""
    rng = np.random.default_rng(seed)
    truth = {"alpha": {"none": math.log(20.0), "hcg": math.log(40.0)}, "sigma": 0.6, "tau": 0.3}
    rows = []
    for j in range(n_arms):
        strategy = "none" if j % 2 else "hcg"
        n = int(rng.integers(15, 60))
        mu = truth["alpha"][strategy] + truth["tau"] * rng.normal()
        x = np.exp(rng.normal(mu, truth["sigma"], n))
        fmt = j % 4
        common = {"outcome_id": f"a{j}_1", "arm_id": f"a{j}", "study_id": f"s{j}", "strategy": strategy, "n": n}
        if fmt == 0:
            rows.append(concentration_row(**common, statistic="mean", value=x.mean()))
        elif fmt == 1:
            rows.append(concentration_row(**common, statistic="mean", value=x.mean(), dispersion_type="sd",
                             dispersion_value=x.std(ddof=1)))
        elif fmt == 2:
            # approximately unbiased quartiles (Hyndman-Fan type 8); see the model docstring for the
            # inward bias of R's default type 7 at small n
            q1, m, q3 = np.quantile(x, [0.25, 0.5, 0.75], method="median_unbiased")
            rows.append(concentration_row(**common, statistic="median", value=m, dispersion_type="iqr", lower=q1, upper=q3))
        else:
            rows.append(concentration_row(**common, statistic="median", value=np.median(x), dispersion_type="range",
                             lower=x.min(), upper=x.max()))
    return pd.DataFrame(rows, columns=HARMONISED_COLUMNS), truth



# ------------------------------------------------------------------------------------------------
# A mocked sampler: draws from the prior instead of running NUTS (pymc.testing.mock_sample)


def mock_sample(model, sampler, progressbar: bool = False):
    """Drop-in for :func:`trt_recovery.fitting.sample`: prior draws (seeded) with the sample
    statistics the convergence checks read (no divergences, E-BFMI near 2, shallow trees)."""
    from pymc.testing import mock_sample as _mock

    rng = np.random.default_rng(sampler.seed)
    stats = {
        "diverging": lambda size: np.zeros(size, dtype=bool),
        "energy": lambda size: rng.normal(size=size),
        "tree_depth": lambda size: np.full(size, 3),
    }
    names = [v.name for v in model.free_RVs] + [v.name for v in model.deterministics]
    with model:
        tree = _mock(draws=sampler.draws, chains=sampler.chains, random_seed=sampler.seed, var_names=names,
                     sample_stats=stats)
    # mock_sample repeats chain 0; give each chain its own prior draws so R-hat is meaningful
    import pymc as pm

    with model:
        prior = pm.sample_prior_predictive(draws=sampler.draws * sampler.chains, random_seed=sampler.seed + 1,
                                           var_names=names)
    post = prior["prior"].to_dataset().isel(chain=0, drop=True)
    post = post.assign_coords(draw=np.arange(sampler.draws * sampler.chains))
    post = post.coarsen(draw=sampler.draws).construct(draw=("chain", "draw"))
    post = post.assign_coords(chain=np.arange(sampler.chains), draw=np.arange(sampler.draws))
    tree["posterior"] = post.transpose("chain", "draw", ...)
    return tree


MOCK_CHECKS = {"rhat_max": 1.5, "ess_bulk_min": 10, "max_divergences": 0}


def mock_config(name: str, model: str, draws: int = 100, chains: int = 2, **extra):
    """A config for a mocked fit (gates loosened: the draws are prior draws, stated here)."""
    from trt_recovery.config import parse_config

    raw = {"name": name, "model": model, "sampler": {"seed": 11, "draws": draws, "tune": 0, "chains": chains},
           "checks": MOCK_CHECKS, **extra}
    return parse_config(raw, f"{name}.yaml")


def hand_built(fit, values: dict[str, object]):
    """A copy of ``fit`` whose posterior holds the given constant values (other variables kept).

    ``values`` maps a variable to a scalar, or to ``{level: value}`` over its one dimension (levels
    not named are 0). The checksum is not updated: the copy is used in memory only.
    """
    import copy

    from trt_recovery.posterior import Fit

    tree = fit.tree.copy(deep=True)
    post = tree["posterior"].to_dataset()
    for name, v in values.items():
        da = post[name]
        if isinstance(v, dict):
            dim = [d for d in da.dims if d not in ("chain", "draw")][0]
            arr = np.array([v.get(str(lv), 0.0) for lv in da[dim].values])
            post[name] = da * 0 + arr
        else:
            post[name] = da * 0 + v
    tree["posterior"] = post
    out = Fit(tree=tree, path=None)
    out._model_data = copy.copy(fit.model_data())
    return out


def clipped_texts(fig, tolerance: float = 1.0) -> list[str]:
    """The visible texts of a figure that reach outside it once rendered (titles, labels, notes)."""
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    undrawn = set()  # tick labels of ticks outside the axis limits are never drawn
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not lo - 1e-9 * (1 + abs(lo)) <= tick.get_loc() <= hi + 1e-9 * (1 + abs(hi)):
                    undrawn |= {id(tick.label1), id(tick.label2)}
    out = []
    for t in fig.findobj(Text):
        if not t.get_visible() or not t.get_text().strip() or id(t) in undrawn:
            continue
        bb = t.get_window_extent(renderer)
        if bb.x0 < box.x0 - tolerance or bb.x1 > box.x1 + tolerance or bb.y0 < box.y0 - tolerance or bb.y1 > box.y1 + tolerance:
            out.append(t.get_text())
    return out


__all__ = ["math"]
