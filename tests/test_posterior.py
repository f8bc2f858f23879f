"""A saved fit is one object: tables round-trip, and a stale, corrupt or old file is refused."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from trt_recovery.posterior import StaleFitError, dataset_to_frame, frame_to_dataset, load_fit, open_fit, staleness


def test_tables_round_trip_with_missing_values_and_types():
    df = pd.DataFrame({"s": ["a", None, "c"], "i": pd.array([1, None, 3], dtype="Int64"), "f": [0.5, np.nan, 2.0],
                       "b": [True, False, True]})
    back = dataset_to_frame(frame_to_dataset(df))
    assert back["s"].isna().tolist() == [False, True, False] and back["s"].iloc[2] == "c"
    assert str(back["i"].dtype) == "Int64" and back["i"].isna().tolist() == [False, True, False]
    assert back["b"].tolist() == [True, False, True]
    np.testing.assert_array_equal(back["f"].to_numpy(), df["f"].to_numpy())


def test_saved_fit_rebuilds_the_same_model_data(mock_survival_fit):
    fit = load_fit(mock_survival_fit.path)
    md, orig = fit.model_data(), mock_survival_fit.model_data()
    assert md.coords == orig.coords
    pd.testing.assert_frame_equal(md.arms.astype(object), orig.arms.astype(object), check_dtype=False)
    for name, t in orig.terms.items():
        if len(t):
            pd.testing.assert_frame_equal(md.terms[name].reset_index(drop=True), t.reset_index(drop=True),
                                          check_dtype=False)
    assert fit.build_model().point_logps() == mock_survival_fit.build_model().point_logps()


def test_corrupt_truncated_or_old_files_are_refused(mock_success_fit, tmp_path):
    good = tmp_path / "good.nc"
    shutil.copy(mock_success_fit.path, good)
    assert load_fit(good).model == "binomial_success"
    # a changed draw: the checksum no longer matches
    dt = xr.open_datatree(good).load()
    post = dt["posterior"].to_dataset()
    post["study_sd"] = post["study_sd"] + 1e-9
    dt["posterior"] = post
    dt.to_netcdf(tmp_path / "changed.nc")
    with pytest.raises(StaleFitError, match="checksum mismatch"):
        load_fit(tmp_path / "changed.nc")
    # a truncated file
    (tmp_path / "cut.nc").write_bytes(good.read_bytes()[:2000])
    with pytest.raises(StaleFitError, match="unreadable posterior"):
        load_fit(tmp_path / "cut.nc")
    # a file written before provenance groups existed
    dt = xr.open_datatree(good).load()
    del dt.attrs["format"]
    dt.to_netcdf(tmp_path / "old.nc")
    with pytest.raises(StaleFitError, match="older version"):
        load_fit(tmp_path / "old.nc")


def test_changed_model_code_or_repository_data_make_a_fit_stale(mock_success_fit, monkeypatch):
    fit = open_fit(mock_success_fit.path)
    assert staleness(fit) == []  # a fit of a given table is not compared with data/
    fit.tree.attrs["model_identity"] = "0" * 64
    assert "code of model 'binomial_success' changed" in staleness(fit)[0]
    fit.tree.attrs["model_identity"] = fit.spec.identity()
    fit.tree.attrs["data_source"] = "repository"
    from trt_recovery import stamps

    # data/ differs from the fit's data hash: stale only if the rows the analysis uses changed
    monkeypatch.setattr(stamps, "input_hashes", lambda names: {names[0]: fit.tree.attrs["model_data_hash"]})
    assert staleness(fit) == []
    monkeypatch.setattr(stamps, "input_hashes", lambda names: {names[0]: "something else"})
    assert any("rows this analysis uses changed" in r for r in staleness(fit))


def test_input_stamps_move_only_for_the_analysis_whose_rows_changed(tmp_path):
    """Editing a concentration row changes the concentration analysis's inputs, not the success model's."""
    import shutil

    import pandas as pd

    from trt_recovery import paths
    from trt_recovery.stamps import input_hashes
    from trt_recovery.validate import load_dataset

    before = input_hashes(["success_rate", "concentration"])
    d = tmp_path / "data"
    shutil.copytree(paths.DATA_DIR, d)
    out = pd.read_csv(d / "outcomes.csv", dtype=str, keep_default_na=False)
    from trt_recovery.stamps import used_rows

    conc_row = used_rows(["concentration"])["concentration"]["outcome_id"].iloc[0]
    i = out.index[out["outcome_id"] == conc_row][0]
    out.loc[i, "value"] = str(float(out.loc[i, "value"]) * 1.1)
    out.to_csv(d / "outcomes.csv", index=False)
    after = input_hashes(["success_rate", "concentration"], dataset=load_dataset(d))
    assert after["success_rate"] == before["success_rate"]
    assert after["concentration"] != before["concentration"]


def test_stamps_move_only_for_the_analyses_whose_model_code_changed(monkeypatch):
    """An edit of the binomial model's code moves the success analysis's stamp, not the survival
    one's (make refits by stamp, so it refits only the analyses of the edited model)."""
    from trt_recovery.models.base import ModelSpec
    from trt_recovery.stamps import stamp_texts

    before = stamp_texts(["success_rate", "survival"])
    assert [line.split()[0] for line in before["survival"].splitlines()] == ["rows", "model", "config"]
    real = ModelSpec.identity
    monkeypatch.setattr(ModelSpec, "identity", lambda self: "edited" if self.name == "binomial_success" else real(self))
    after = stamp_texts(["success_rate", "survival"])
    assert after["survival"] == before["survival"]
    assert after["success_rate"] != before["success_rate"]
    assert "model edited" in after["success_rate"]


def test_model_identity_ignores_documentation_but_not_code():
    from trt_recovery.models.base import _code_only

    a = 'def f(x):\n    """Doc."""\n    return x + 1  # comment\n'
    b = 'def f(x):\n    """Other words."""\n    # another comment\n    return x + 1\n'
    c = 'def f(x):\n    """Doc."""\n    return x + 2\n'
    assert _code_only(a) == _code_only(b) != _code_only(c)
