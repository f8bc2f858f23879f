"""A compiled model reused for other data: when graphs count as the same, and that a reused
compiled model samples exactly what a fresh ``pm.sample`` does."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pymc as pm
import pytest

from trt_recovery.compiled import CompiledModels, same_graph, sample_nutpie


def toy(y, prior_sd: float = 5.0, groups=("a", "b")):
    """A normal model with a data variable over an observation dimension."""
    with pm.Model(coords={"y_obs": np.arange(len(y)), "group": list(groups)}) as m:
        data = pm.Data("y", y, dims="y_obs")
        mu = pm.Normal("mu", 0.0, prior_sd)
        pm.Normal("offset", 0.0, 1.0, dims="group")
        pm.Deterministic("twice", 2 * mu)
        pm.Normal("lik", mu, 1.0, observed=data, dims="y_obs")
    return m


def test_only_data_may_differ_between_graphs_that_share_a_compiled_model():
    rng = np.random.default_rng(0)
    base = toy(rng.normal(size=10))
    assert same_graph(base, toy(rng.normal(2.0, 1.0, size=25)))  # other values, other length
    assert not same_graph(base, toy(rng.normal(size=10), prior_sd=2.0))  # a constant of the graph
    assert not same_graph(base, toy(rng.normal(size=10), groups=("a", "c")))  # other labels: other output


def test_survival_models_share_a_graph_only_when_weights_are_all_that_differ(simulated_survival_table):
    """In the survival model the weights are data (leave-one-out without recompiling); observed
    values are constants of the graph, so other data is another graph."""
    from helpers import mock_config
    from trt_recovery.models import get_model

    cfg = mock_config("samegraph", "survival_cure_weibull")
    spec = get_model(cfg.model)
    priors = {**spec.default_priors, **cfg.priors}
    md = spec.prepare(simulated_survival_table, cfg.data)
    base = spec.build(md, priors)
    term = next(k for k, v in md.terms.items() if len(v) > 1)
    weights = md.terms[term]["weight"].to_numpy().copy()
    weights[0] = 0.0
    reweighted = md.terms[term].assign(weight=weights)
    other_weights = spec.build(replace(md, terms={**md.terms, term: reweighted}), priors)
    assert same_graph(base, other_weights)
    changed = md.terms["interval_count"].copy()
    changed.loc[changed.index[0], "events"] = changed["events"].iloc[0] + 1
    other_values = spec.build(replace(md, terms={**md.terms, "interval_count": changed}), priors)
    assert not same_graph(base, other_values)


@pytest.mark.sampling
def test_a_reused_compiled_model_samples_what_a_fresh_pm_sample_does():
    rng = np.random.default_rng(1)
    first, second = toy(rng.normal(0.0, 1.0, 12)), toy(rng.normal(3.0, 1.0, 30))
    settings = dict(draws=100, tune=100, chains=2, cores=1)
    cache = CompiledModels()
    got = [sample_nutpie(m, seed=7, target_accept=0.9, cache=cache, **settings) for m in (first, second)]
    assert (cache.compiles, cache.reuses) == (1, 1)
    # the second fit ran on the first model's compiled code with the second's data swapped in, and
    # gives exactly the draws of pm.sample compiling the second model afresh (same seed derivation)
    fresh = pm.sample(model=second, nuts_sampler="nutpie", random_seed=7, progressbar=False,
                      nuts={"target_accept": 0.9}, **settings)
    np.testing.assert_array_equal(got[1].posterior["mu"].values, fresh.posterior["mu"].values)
    assert {"posterior", "sample_stats", "observed_data"} <= set(got[1].children)
    assert not np.array_equal(got[0].posterior["mu"].values, got[1].posterior["mu"].values)
