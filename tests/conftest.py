"""Shared fixtures: a stable copy of the three-study slice, a CSV-mutation helper, synthetic data."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

FIXTURE_DATA = Path(__file__).parent / "fixtures" / "data"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A writable copy of the fixture tables (studies, arms, outcomes)."""
    d = tmp_path / "data"
    shutil.copytree(FIXTURE_DATA, d)
    return d


def read(d: Path, table: str) -> pd.DataFrame:
    return pd.read_csv(d / f"{table}.csv", dtype=str, keep_default_na=False)


def write(d: Path, table: str, df: pd.DataFrame) -> None:
    df.to_csv(d / f"{table}.csv", index=False)


def synthetic_tables(directory: Path, arms: list[dict], seed: int) -> None:
    """Write a valid dataset: one study per arm, each with a recovered r of n.

    ``arms`` items: ``strategy``, ``n`` and ``p`` (true recovery probability); events are drawn
    binomially with ``seed``.
    """
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    studies, arm_rows, outcomes = [], [], []
    for i, a in enumerate(arms):
        sid = f"synth{2000 + i}"
        studies.append(
            dict(study_id=sid, first_author="Synth", year=2000 + i, title=f"Synthetic study {i}", journal="None",
                 pmid=str(10000000 + i), doi="", design="case_series", population="trt", country="", duplicate_of="",
                 source_read="abstract", url="", notes="")
        )
        aid = f"{sid}_all"
        arm_rows.append(
            dict(arm_id=aid, study_id=sid, arm_label="all", parent_arm_id="", strategy=a["strategy"], serm_agent="",
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
