"""Power-scaling sensitivity: a quantity the data cannot move is flagged, one the data fix is not.

Hand-built posteriors with known log prior and log likelihood (no sampling): theta ~ N(0, 1)
a priori; in the first case the likelihood does not involve theta, in the second y_i ~ N(theta, 1)
with 50 observations.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from trt_recovery.power_scaling import THRESHOLD, diagnosis, sensitivity_table
from trt_recovery.summaries import contraction, flag_columns


def _da(x):
    return xr.DataArray(np.asarray(x).reshape(4, -1), dims=("chain", "draw"))


def _case(informative: bool, seed: int = 1):
    rng = np.random.default_rng(seed)
    n_draws = 4000
    phi = rng.normal(0.3, 0.1, n_draws)  # a parameter the data do inform, in both cases
    if informative:
        y = rng.normal(0.7, 1.0, 50)
        post_sd = 1 / np.sqrt(1 + len(y))
        theta = rng.normal(y.sum() / (1 + len(y)), post_sd, n_draws)
        ll = stats.norm.logpdf(y[None, :], theta[:, None], 1).sum(1)
    else:
        theta = rng.normal(0, 1, n_draws)  # the posterior of theta is its prior
        ll = stats.norm.logpdf(0.3, phi, 0.1)
    lp = stats.norm.logpdf(theta, 0, 1) + stats.norm.logpdf(phi, 0, 1)
    prior_theta = rng.normal(0, 1, n_draws)
    return prior_theta, {"theta": _da(theta)}, _da(lp), _da(ll)


def test_a_parameter_the_data_cannot_move_is_flagged():
    prior, q, lp, ll = _case(informative=False)
    row = sensitivity_table(q, lp, ll).loc["theta"]
    assert row["prior_sensitivity"] > THRESHOLD and row["likelihood_sensitivity"] < THRESHOLD
    assert row["diagnosis"].startswith("prior-dominated")
    flags = flag_columns(prior, q["theta"].values, row)
    assert flags["evidence_flag"] == "mostly prior"


def test_a_parameter_the_data_fix_is_data_informed():
    prior, q, lp, ll = _case(informative=True)
    row = sensitivity_table(q, lp, ll).loc["theta"]
    assert row["likelihood_sensitivity"] > THRESHOLD > row["prior_sensitivity"]
    assert row["diagnosis"] == "data-dominated"
    assert flag_columns(prior, q["theta"].values, row)["evidence_flag"] == "data-informed"


def test_prior_dominated_caps_the_flag_even_when_variance_contracts():
    """A narrow posterior that power-scaling shows to rest on the prior is not 'data-informed'."""
    rng = np.random.default_rng(3)
    prior, post = rng.normal(0, 1, 4000), rng.normal(0, 0.2, 4000)
    assert contraction(prior, post) > 0.9
    row = {"prior_sensitivity": 0.2, "likelihood_sensitivity": 0.01, "diagnosis": diagnosis(0.2, 0.01)}
    assert flag_columns(prior, post, row)["evidence_flag"] == "partly informed"
    assert flag_columns(prior, post)["evidence_flag"] == "data-informed"


@pytest.mark.parametrize(("p", "lk", "expected"), [(0.2, 0.2, "possible prior-data conflict"),
                                                   (0.01, 0.2, "data-dominated"),
                                                   (0.01, 0.01, "low sensitivity to prior and data"),
                                                   (np.nan, 0.2, "not assessable")])
def test_diagnosis_words(p, lk, expected):
    assert diagnosis(p, lk) == expected


def test_saved_log_prior_matches_a_rebuilt_model(mock_success_fit):
    """The log prior saved with a fit is the one the rebuilt model gives (the fallback path)."""
    from trt_recovery.power_scaling import log_prior, log_prior_dataset, scaled_prior_names

    assert "log_prior" in mock_success_fit.tree.children
    model = mock_success_fit.build_model()
    names = scaled_prior_names(model)
    assert names and not any(n.endswith("_z") for n in names)
    saved = log_prior(mock_success_fit)
    rebuilt = log_prior_dataset(mock_success_fit.posterior, model)
    np.testing.assert_allclose(saved.values, sum(rebuilt[n] for n in names).values, rtol=1e-10)
    # hand check of one prior at every draw: study_sd ~ HalfNormal(study_sd_scale)
    sd = mock_success_fit.posterior["study_sd"].values
    scale = mock_success_fit.priors["study_sd_scale"]
    np.testing.assert_allclose(rebuilt["study_sd"].values, stats.halfnorm.logpdf(sd, scale=scale), rtol=1e-8)
