"""The Dask runner: results in task order, a failing task kept in its slot, real worker processes."""

from __future__ import annotations

import os

import pytest

from trt_recovery.parallel import TaskError, run_tasks


def square_or_fail(x: int) -> tuple[int, int]:
    if x == 3:
        raise ValueError("three is not allowed")
    return x * x, os.getpid()


def test_results_in_task_order_and_failures_kept_on_worker_processes():
    out = run_tasks(square_or_fail, [1, 2, 3, 4], labels=["a", "b", "c", "d"], n_workers=2, progress=False)
    assert [o[0] for o in out if not isinstance(o, TaskError)] == [1, 4, 16]
    err = out[2]
    assert isinstance(err, TaskError) and err.label == "c" and "three is not allowed" in err.error and not err
    # the work ran in worker processes, not in this one
    assert os.getpid() not in {o[1] for o in out if not isinstance(o, TaskError)}


def test_inprocess_runs_in_this_process_and_labels_must_match():
    out = run_tasks(square_or_fail, [5], scheduler="inprocess", progress=False)
    assert out == [(25, os.getpid())]
    with pytest.raises(ValueError, match="2 labels for 1 tasks"):
        run_tasks(square_or_fail, [5], labels=["x", "y"], scheduler="inprocess")
    assert run_tasks(square_or_fail, [], scheduler="inprocess") == []
