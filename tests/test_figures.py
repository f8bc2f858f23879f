"""Figures at publication standard: nothing clipped once rendered, observed points on the curves."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from helpers import clipped_texts  # noqa: E402


def test_recovery_curves_are_not_clipped_and_show_observed_points(mock_survival_fit):
    from trt_recovery.survival.report import curves_figure, observed_points

    fig = curves_figure(mock_survival_fit)
    assert clipped_texts(fig) == []
    # every observed point drawn is a reported (time, share) of this population and threshold
    fit = mock_survival_fit
    shown = [s for s in fit.arms["strategy"].unique() if observed_points(fit, s, "trt", "any")]
    assert shown, "the simulated studies report counts at 'any' in TRT"
    for s in shown:
        for t, p in observed_points(fit, s, "trt", "any"):
            assert t > 0 and 0 <= p <= 1
    markers = [line for ax in fig.axes for line in ax.get_lines() if line.get_marker() == "o"]
    assert markers
    plt.close(fig)


def test_forest_plots_are_not_clipped(mock_success_fit, mock_concentration_fit):
    from trt_recovery import concentration, success

    fit = mock_success_fit
    fig = success.forest_plot(success.observed_rates(fit.used), success.pooled_table(fit), het=success.heterogeneity(fit))
    assert clipped_texts(fig) == []
    plt.close(fig)
    fit = mock_concentration_fit
    fig = concentration.forest_plot(concentration.observed_table(fit.used), concentration.pooled_table(fit),
                                    het=concentration.interval(fit.posterior["study_sd"]))
    assert clipped_texts(fig) == []
    plt.close(fig)
