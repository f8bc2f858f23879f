"""The evidence map sets what exists beside what the models use."""

from __future__ import annotations

import pandas as pd

from trt_recovery.evidence import evidence_map, evidence_map_figure, modelled_rows
from trt_recovery.validate import load_dataset


def test_the_map_counts_modelled_rows_apart_and_never_more_than_exist(data_dir):
    ds = load_dataset(data_dir)
    modelled = modelled_rows(ds)
    assert set(modelled) >= {"survival", "success_rate", "concentration"}
    emap = evidence_map(ds, modelled)
    for name, used in modelled.items():
        col = f"rows_in_{name}"
        assert emap[col].sum() == len(used)  # every used row lands in its cell
        assert (emap[col] <= emap["outcome_rows"]).all()
    # a hand-made 'used' table lands in its cell only
    fake = pd.DataFrame({"strategy": ["hcg_serm", "hcg_serm"], "population": ["trt", "trt"]})
    one = evidence_map(ds, {"x": fake}).set_index(["strategy", "population"])
    assert one.loc[("hcg_serm", "trt"), "rows_in_x"] == 2 and one["rows_in_x"].sum() == 2
    fig = evidence_map_figure(evidence_map(ds, modelled))
    assert "modelled" in fig.axes[0].get_title()


def test_case_reports_are_counted_apart(data_dir):
    from helpers import read, write

    studies = read(data_dir, "studies")
    studies.loc[0, "design"] = "case_report"
    write(data_dir, "studies", studies)
    ds = load_dataset(data_dir)
    emap = evidence_map(ds)
    sid = studies.loc[0, "study_id"]
    cells = ds.arms.loc[ds.arms["study_id"] == sid, "strategy"].unique()
    hit = emap[emap["strategy"].isin(cells) & (emap["case_report_studies"] > 0)]
    assert len(hit) >= 1 and (emap["case_report_studies"] <= emap["studies"]).all()
