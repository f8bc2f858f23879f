"""Harmonisation: unit conversions, percentages to counts, and no row lost."""

from __future__ import annotations

import math

import pandas as pd

import pytest

from helpers import read, write
from trt_recovery import paths
from trt_recovery.harmonise import harmonise, to_months
from trt_recovery.validate import load_dataset


@pytest.mark.parametrize(
    ("value", "unit", "months"),
    [(12, "months", 12.0), (2, "years", 24.0), (365.25, "days", 12.0), (52, "weeks", 52 * 7 / (365.25 / 12))],
)
def test_to_months(value, unit, months):
    assert to_months(value, unit) == pytest.approx(months)


def test_to_months_missing_is_nan():
    assert math.isnan(to_months(None, "months")) and math.isnan(to_months(3.0, None))


@pytest.mark.parametrize("data", ["fixture", "repository"])
def test_every_raw_outcome_is_harmonised_or_excluded(data_dir, data):
    ds = load_dataset(data_dir if data == "fixture" else paths.DATA_DIR)
    h = harmonise(ds)
    raw = set(ds.outcomes["outcome_id"])
    kept, dropped = set(h.outcomes["outcome_id"]), set(h.exclusions["outcome_id"])
    assert kept | dropped == raw
    assert not kept & dropped
    assert h.exclusions["reason"].str.len().gt(0).all()


def test_weeks_are_converted_and_percentages_become_counts(data_dir):
    o = read(data_dir, "outcomes")
    row = o["outcome_id"] == "samplaski2014_all_1"
    o.loc[row, ["time", "time_unit", "n"]] = ["26", "weeks", "40"]
    write(data_dir, "outcomes", o)
    h = harmonise(load_dataset(data_dir))
    r = h.outcomes.set_index("outcome_id").loc["samplaski2014_all_1"]
    assert r["time_months"] == pytest.approx(26 * 7 / (365.25 / 12))
    assert r["proportion"] == pytest.approx(0.65)
    assert r["events"] == 26 and bool(r["events_derived"])


def test_thresholds_are_never_converted(data_dir):
    ds = load_dataset(data_dir)
    h = harmonise(ds)
    merged = h.outcomes.merge(ds.outcomes[["outcome_id", "threshold"]], on="outcome_id", suffixes=("", "_raw"))
    assert (merged["threshold"].fillna("") == merged["threshold_raw"].fillna("")).all()


def test_proportion_without_denominator_is_kept_with_its_printed_precision(data_dir):
    """A percentage without n is passed on (a model may integrate over the denominators it admits),
    with no invented count and the number of decimals it was printed with."""
    h = harmonise(load_dataset(data_dir))
    assert "samplaski2014_all_1" not in set(h.exclusions["outcome_id"])
    row = h.outcomes.set_index("outcome_id").loc["samplaski2014_all_1"]
    assert pd.isna(row["n"]) and pd.isna(row["events"])
    assert row["proportion"] == pytest.approx(0.65) and row["printed_decimals"] == 0


@pytest.mark.parametrize("printed, decimals", [(65, 0), (64.8, 1), (64.85, 2), (0.5, 1), (100, 0)])
def test_printed_decimals(printed, decimals):
    from trt_recovery.harmonise import printed_decimals

    assert printed_decimals(printed) == decimals
