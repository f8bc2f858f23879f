"""Guyot reconstruction: the KM curve of the reconstructed data matches the published curve."""

from __future__ import annotations

import numpy as np
import pytest
from lifelines import KaplanMeierFitter

from trt_recovery.survival.km import reconstruct_ipd


def _published(seed, n=200):
    rng = np.random.default_rng(seed)
    t_event = rng.weibull(1.5, n) * 8
    t_cens = rng.uniform(2, 20, n)
    time, event = np.minimum(t_event, t_cens), (t_event <= t_cens).astype(int)
    km = KaplanMeierFitter().fit(time, event)
    sf = km.survival_function_.reset_index()
    t_risk = np.array([0.0, 4.0, 8.0, 12.0, 16.0])
    n_risk = np.array([(time >= tr).sum() for tr in t_risk])
    return time, event, km, sf.iloc[:, 0].to_numpy(), sf.iloc[:, 1].to_numpy(), t_risk, n_risk


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reconstruction_reproduces_the_curve_with_total_events(seed):
    time, event, km, t, s, t_risk, n_risk = _published(seed)
    ipd = reconstruct_ipd(t, s, t_risk, n_risk, total_events=int(event.sum()))
    assert len(ipd) == len(time)
    assert abs(int(ipd.event.sum()) - int(event.sum())) <= 3
    km2 = KaplanMeierFitter().fit(ipd.time, ipd.event)
    grid = np.linspace(0, 18, 60)
    diff = np.abs(km.survival_function_at_times(grid).values - km2.survival_function_at_times(grid).values)
    assert diff.max() < 0.02


def test_reconstruction_without_total_events_is_close():
    time, event, km, t, s, t_risk, n_risk = _published(1)
    ipd = reconstruct_ipd(t, s, t_risk, n_risk)
    km2 = KaplanMeierFitter().fit(ipd.time, ipd.event)
    grid = np.linspace(0, 18, 60)
    assert np.abs(km.survival_function_at_times(grid).values - km2.survival_function_at_times(grid).values).max() < 0.05


def test_bad_risk_table_is_rejected():
    with pytest.raises(ValueError, match="first risk-table time must be 0"):
        reconstruct_ipd([1, 2], [0.9, 0.8], [1.0], [10])
