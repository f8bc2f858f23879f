"""Shared fixtures. Tiers (pytest markers):

* default: no NUTS. Fits are made with a mocked sampler (prior draws, :func:`helpers.mock_sample`)
  or hand-built posteriors; PyTensor compiles in ``FAST_COMPILE`` mode (these tests run tiny graphs).
* ``sampling``: a few small real NUTS fits (part of ``make test``).
* ``slow``: full-length parameter recovery and real notebook runs (``make test-slow``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import helpers

FIXTURE_DATA = Path(__file__).parent / "fixtures" / "data"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "slow" in item.keywords and "sampling" in item.keywords:
            raise pytest.UsageError(f"{item.nodeid}: mark a test 'slow' or 'sampling', not both")


@pytest.fixture(autouse=True)
def _fast_compile_without_nuts(request):
    """Default-tier tests compile small graphs many times: FAST_COMPILE is much quicker there."""
    if request.node.get_closest_marker("sampling") or request.node.get_closest_marker("slow"):
        yield
        return
    import pytensor

    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        yield


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A writable copy of the fixture tables (studies, arms, outcomes)."""
    d = tmp_path / "data"
    shutil.copytree(FIXTURE_DATA, d)
    return d


@pytest.fixture
def mocked_sampler(monkeypatch):
    """fit_analysis draws from the prior instead of running NUTS."""
    from trt_recovery import fitting

    monkeypatch.setattr(fitting, "sample", helpers.mock_sample)


def _mock_fit(tmp_path_factory, worker_id, name, model, table, **cfg):
    """A fit with prior draws for a posterior, built by one pytest-xdist worker and opened by the others."""
    import pytensor

    from trt_recovery import fitting
    from trt_recovery.posterior import open_fit

    def make(path):
        with pytest.MonkeyPatch.context() as mp, pytensor.config.change_flags(mode="FAST_COMPILE"):
            mp.setattr(fitting, "sample", helpers.mock_sample)
            return fitting.fit_analysis(helpers.mock_config(name, model, **cfg), harmonised_outcomes=table(),
                                        path=path, prior_draws=200)

    return helpers.shared_across_workers(tmp_path_factory, worker_id, f"{name}.nc", make, open_fit)


@pytest.fixture(scope="session")
def simulated_survival_table():
    from trt_recovery.survival.simulate import simulate_studies

    df, truth = simulate_studies(14, seed=5)
    return df


@pytest.fixture(scope="session")
def mock_survival_fit(tmp_path_factory, worker_id, simulated_survival_table):
    """A survival fit of simulated studies (strategies none, hcg_serm, hcg_fsh; trt and
    contraception) whose 'posterior' is prior draws: for plumbing, never for numbers."""
    return _mock_fit(tmp_path_factory, worker_id, "mocksurv", "survival_cure_weibull", lambda: simulated_survival_table)


@pytest.fixture(scope="session")
def mock_success_fit(tmp_path_factory, worker_id):
    from trt_recovery.harmonise import harmonise
    from trt_recovery.validate import load_dataset

    def table():
        d = tmp_path_factory.mktemp("succ") / "data"
        helpers.synthetic_tables(d, [{"strategy": "hcg_serm", "n": 80, "p": 0.8},
                                     {"strategy": "none", "n": 60, "p": 0.5},
                                     {"strategy": "none", "n": 40, "p": 0.6}], seed=2)
        return harmonise(load_dataset(d)).outcomes

    return _mock_fit(tmp_path_factory, worker_id, "mocksucc", "binomial_success", table)


@pytest.fixture(scope="session")
def mock_preservation_fit(tmp_path_factory, worker_id):
    """The preservation model on the repository's data, with prior draws for a posterior."""
    return _mock_fit(tmp_path_factory, worker_id, "mockpres", "binomial_preservation", _repository_outcomes,
                     data={"populations": ["trt", "aas", "mixed", "contraception"],
                           "strategies": ["continued_trt", "hcg_during_trt", "fsh_during_trt", "hcg_fsh_during_trt"]})


@pytest.fixture(scope="session")
def mock_pregnancy_fit(tmp_path_factory, worker_id):
    """The pregnancy model on the repository's data, with prior draws for a posterior (plumbing only)."""
    return _mock_fit(tmp_path_factory, worker_id, "mockpreg", "binomial_pregnancy", _repository_outcomes)


@pytest.fixture(scope="session")
def mock_concentration_fit(tmp_path_factory, worker_id):
    return _mock_fit(tmp_path_factory, worker_id, "mockconc", "lognormal_concentration",
                     lambda: helpers.simulate_concentration_arms(seed=1, n_arms=8)[0])


@pytest.fixture(scope="session")
def tiny_survival_fit(tmp_path_factory, worker_id, simulated_survival_table):
    """One small real NUTS fit of the survival model, shared by the sampling tier."""
    from trt_recovery.config import parse_config
    from trt_recovery.fitting import fit_analysis
    from trt_recovery.posterior import open_fit

    cfg = parse_config({"name": "tinysurv", "model": "survival_cure_weibull",
                        "sampler": {"seed": 4, "backend": "pymc", "draws": 300, "tune": 300, "chains": 2,
                                    "cores": 1, "target_accept": 0.9},
                        # a smoke-test fit: gates loosened and stated here
                        "checks": {"rhat_max": 1.1, "ess_bulk_min": 50, "max_divergences": 5,
                                   "max_treedepth_share": 0.2}}, "tinysurv.yaml")
    return helpers.shared_across_workers(
        tmp_path_factory, worker_id, "tinysurv.nc",
        lambda path: fit_analysis(cfg, harmonised_outcomes=simulated_survival_table, path=path, log_likelihood=False,
                                  prior_draws=0),
        open_fit)


@pytest.fixture(scope="session")
def mock_survival_bundle(tmp_path_factory, worker_id, mock_survival_fit):
    """The calculator bundle of the mocked survival fit: (arrays, meta), built once per test run."""
    import pickle

    import pytensor

    from trt_recovery.survival.calculator import build_bundle

    def make(path):
        with pytensor.config.change_flags(mode="FAST_COMPILE"):
            bundle = build_bundle(mock_survival_fit)
        path.write_bytes(pickle.dumps(bundle))
        return bundle

    return helpers.shared_across_workers(tmp_path_factory, worker_id, "mocksurv_bundle.pkl", make,
                                         lambda path: pickle.loads(path.read_bytes()))


def _repository_outcomes():
    from trt_recovery.harmonise import harmonise
    from trt_recovery.validate import load_dataset

    return harmonise(load_dataset()).outcomes
