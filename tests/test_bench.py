"""The benchmark's per-draw sampler statistics (make bench reports them per backend and seed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from trt_recovery.bench import step_stats


def _tree(**stats) -> xr.DataTree:
    return xr.DataTree.from_dict({"sample_stats": xr.Dataset({k: (("chain", "draw"), v) for k, v in stats.items()})})


def test_step_size_and_leapfrog_steps_per_draw():
    steps = np.array([[3, 7, 15, 7], [7, 7, 3, 31]])
    out = step_stats(_tree(step_size=np.full((2, 4), 0.25), n_steps=steps))
    assert out == {"step_size": 0.25, "leapfrog_per_draw": 10.0}
    # numpyro names the count tree_size; a backend that records neither gives NaN, not a made-up number
    assert step_stats(_tree(step_size=np.full((2, 4), 0.5), tree_size=steps))["leapfrog_per_draw"] == 10.0
    missing = step_stats(_tree(lp=np.zeros((2, 4))))
    assert math.isnan(missing["step_size"]) and math.isnan(missing["leapfrog_per_draw"])


def test_bench_names_each_nutpie_adaptation_and_refuses_unknown_backends():
    from trt_recovery.bench import BENCH_BACKENDS, backend_setting

    assert BENCH_BACKENDS == ("pymc:diag", "nutpie:diag", "nutpie:low_rank", "numpyro:diag")
    assert backend_setting("nutpie") == {"backend": "nutpie", "mass_matrix": "diag"}
    assert backend_setting("nutpie:low_rank") == {"backend": "nutpie", "mass_matrix": "low_rank"}
    for bad, why in (("stan", "unknown backend 'stan'"), ("numpyro:low_rank", "is a nutpie adaptation"),
                     ("nutpie:dense", "unknown adaptation 'dense'")):
        with pytest.raises(SystemExit, match=why):
            backend_setting(bad)


def test_outcome_ids_are_read_with_comments_and_unknown_ids_refused(tmp_path):
    from trt_recovery.bench import read_outcome_ids

    listed = tmp_path / "rows.txt"
    listed.write_text("# rows of an older commit\na_1 b_2  # trailing comment\n\n  c_3\n")
    assert read_outcome_ids(listed, ["a_1", "b_2", "c_3", "d_4"]) == ["a_1", "b_2", "c_3"]
    with pytest.raises(SystemExit, match=r"rows.txt: outcome ids not in the dataset: c_3$"):
        read_outcome_ids(listed, ["a_1", "b_2"])
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(SystemExit, match="empty.txt: no outcome id listed"):
        read_outcome_ids(tmp_path / "empty.txt", ["a_1"])


def test_the_rows_of_6360c78_are_still_in_the_dataset():
    """``make bench`` compares the survival sampler on the rows issue 16 first measured: every one
    of them must still be an outcome of the dataset (eight rows)."""
    from trt_recovery.bench import read_outcome_ids
    from trt_recovery.validate import load_dataset
    from trt_recovery.verify import REFERENCE_DIR

    ids = read_outcome_ids(REFERENCE_DIR / "survival_outcomes_6360c78.txt",
                           load_dataset().outcomes["outcome_id"])
    assert len(ids) == len(set(ids)) == 8
