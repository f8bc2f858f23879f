"""Sampling tier: one small real NUTS fit of the survival model, shared, and what is read from it."""

from __future__ import annotations

import numpy as np
import pytest

from trt_recovery.posterior import load_fit
from trt_recovery.survival import report as S

pytestmark = pytest.mark.sampling


def test_tiny_real_fit_is_saved_checked_and_reloaded(tiny_survival_fit):
    fit = load_fit(tiny_survival_fit.path)
    assert fit.passed and fit.sampler["backend"] == "pymc"
    assert {c["check"] for c in fit.convergence["checks"]} >= {"rhat_max", "ess_bulk_min", "ebfmi_min"}
    np.testing.assert_array_equal(fit.posterior["time_intercept"].values, tiny_survival_fit.posterior["time_intercept"].values)


def test_headline_and_ppc_from_a_real_posterior(tiny_survival_fit):
    draws = S.headline(tiny_survival_fit)
    assert draws and all(np.all(np.isfinite(v)) for v in draws.values())
    assert all(np.all((v >= 0) & (v <= 1)) for k, v in draws.items() if not k.startswith("log_median"))
    ppc = S.ppc_table(tiny_survival_fit)
    n_obs = sum(len(t) for name, t in tiny_survival_fit.terms.items() if name != "individual_time")
    n_obs += tiny_survival_fit.terms["individual_time"]["arm_id"].nunique() if "individual_time" in tiny_survival_fit.terms else 0
    assert len(ppc) == n_obs
    # a model fitted to these summaries reproduces most of them within its 95% predictive interval
    assert ppc["inside_95"].mean() >= 0.7
