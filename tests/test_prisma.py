"""The screening log's rules and the PRISMA flow computed from it."""

from __future__ import annotations

import pandas as pd
import pytest

from helpers import read, write
from trt_recovery.prisma import ScreeningLogError, flow, flow_figure
from trt_recovery.validate import check_dataset, load_dataset

COLUMNS = ["record", "title", "where_found", "population", "decision", "reason", "reason_category", "study_id", "round"]


def _log(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame([dict(zip(COLUMNS, r, strict=True)) for r in rows], columns=COLUMNS)


# A hand-made log over the fixture's three studies: every box below is counted by hand.
LOG = [
    ("pmid:25904023", "Wenker", "", "trt", "included", "entered", "", "wenker2015", "1"),
    ("pmid:27855957", "Kohn", "", "trt", "included", "entered", "", "kohn2017", "1"),
    ("pmid:24094422", "Samplaski", "", "trt", "included", "entered", "", "samplaski2014", "1"),
    ("title:Samplaski again", "same record", "", "trt", "duplicate_record", "seen twice", "", "", "1"),
    ("doi:10.1000/abstract", "meeting abstract", "", "trt", "duplicate", "same men", "", "kohn2017", "1"),
    ("pmid:11111111", "a review", "", "trt", "excluded", "review", "secondary_document", "", "1"),
    ("title:no id", "forum copy", "", "trt", "excluded", "no id", "no_identifier", "", "1"),
    ("pmid:22222222", "cut off", "", "trt", "excluded", "results cut off", "not_retrievable", "", "1"),
    ("pmid:33333333", "hormones", "", "trt", "excluded", "hormones only", "no_usable_outcome", "", "2"),
    ("pmid:44444444", "no androgen", "", "hh", "excluded", "no androgen", "not_eligible_population", "", "2"),
]


@pytest.fixture
def screened_dir(data_dir):
    write(data_dir, "screening", _log(LOG))
    return data_dir


def test_flow_counts_each_box_from_the_log(screened_dir):
    f = flow(load_dataset(screened_dir), analyses=["survival"])
    assert (f.identified, f.duplicate_records, f.screened) == (10, 1, 9)
    assert (f.excluded_screening, f.sought, f.not_retrieved, f.assessed, f.excluded_eligibility) == (2, 7, 1, 6, 2)
    assert (f.studies_included, f.reports_included) == (3, 4)
    assert f.reasons == {("screening", "review, meta-analysis or pooled analysis"): 1,
                         ("screening", "no PMID/DOI visible"): 1,
                         ("eligibility", "no semen recovery number"): 1,
                         ("eligibility", "men not stopping androgens"): 1}
    table = f.table()
    assert table.loc[table["box"] == "Records screened", "records"].item() == 9
    # the analysis row counts the studies whose rows reach the survival model on the fixture
    used = f.analyses.set_index("analysis").loc["survival"]
    assert used["studies"] == 3 and used["rows"] >= 3
    fig = flow_figure(f)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "Records screened\nn = 9" in texts and "Reports not retrieved\nn = 1" in texts


def test_moving_a_reason_moves_the_record_between_boxes(screened_dir):
    log = read(screened_dir, "screening")
    log.loc[log["record"] == "pmid:33333333", "reason_category"] = "not_retrievable"
    write(screened_dir, "screening", log)
    f = flow(load_dataset(screened_dir), analyses=[])
    assert (f.not_retrieved, f.assessed, f.excluded_eligibility) == (2, 5, 1)


def test_screening_rules_name_file_row_and_column(screened_dir):
    log = read(screened_dir, "screening")
    log.loc[log["record"] == "pmid:11111111", "reason_category"] = ""
    log.loc[log["record"] == "pmid:25904023", "reason_category"] = "no_identifier"
    log.loc[log["record"] == "pmid:24094422", "decision"] = "excluded"
    log.loc[log["record"] == "pmid:24094422", "reason_category"] = "no_usable_outcome"
    log.loc[log["record"] == "doi:10.1000/abstract", "study_id"] = "nosuch2020"
    write(screened_dir, "screening", log)
    _, problems = check_dataset(screened_dir)
    msgs = {(p.row, p.column, p.message) for p in problems}  # rows count data rows from 1
    assert (6, "reason_category", "an excluded record needs a reason_category (the PRISMA reason group)") in msgs
    assert (1, "reason_category", "only excluded records have a reason_category (decision is 'included')") in msgs
    assert (5, "study_id", "unknown study_id 'nosuch2020' (not in studies.csv)") in msgs
    assert (None, "study_id", "study 'samplaski2014' of studies.csv has no 'included' record in the screening log") in msgs
    assert all(p.file.endswith("screening.csv") for p in problems)


def test_no_screening_log_is_a_clear_error(data_dir):
    ds = load_dataset(data_dir)  # the log is optional for the data...
    with pytest.raises(ScreeningLogError, match="screening.csv is missing"):
        flow(ds, analyses=[])  # ...but the flow is built from it


def test_editing_the_screening_log_does_not_make_fits_stale(screened_dir):
    before = load_dataset(screened_dir).data_hash
    log = read(screened_dir, "screening")
    log.loc[0, "reason"] = "entered (re-read)"
    write(screened_dir, "screening", log)
    assert load_dataset(screened_dir).data_hash == before
    o = read(screened_dir, "outcomes")
    o.loc[0, "notes"] = "edited"
    write(screened_dir, "outcomes", o)
    assert load_dataset(screened_dir).data_hash != before


def test_the_real_log_gives_a_consistent_flow():
    ds = load_dataset()
    f = flow(ds, analyses=[])
    assert f.studies_included == (ds.screening["decision"] == "included").sum()
    assert f.assessed - f.excluded_eligibility == f.reports_included
