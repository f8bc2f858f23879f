"""Many independent fits (leave-one-study-out refits, SBC replications) through Dask distributed.

One entry point, :func:`run_tasks`: it maps a module-level function over a list of task
arguments on a Dask cluster and returns the results in task order. Where the tasks run:

* ``scheduler=None`` (default): a local cluster on this machine, one single-threaded worker
  process per core (``n_workers`` to change it), so that each fit has a core of its own;
* ``scheduler="tcp://host:8786"`` (any address): an existing Dask scheduler, so a user with a
  cluster runs the same command there (``--scheduler`` on the CLI, ``DASK_SCHEDULER`` in make);
* ``scheduler="inprocess"``: workers are threads of this process (tests that monkeypatch the
  sampler, debugging).

A task that raises does not stop the others: its slot holds a :class:`TaskError` with the task's
label and the exception text, and the caller decides what to report. Seeds travel inside the
task arguments, so a result never depends on which worker ran it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

#: Environment of local worker processes: one thread per numerical library, so two fits on two
#: cores do not oversubscribe them.
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
INPROCESS = "inprocess"


@dataclass(frozen=True)
class TaskError:
    """A task that raised: its label and the error, kept in the task's slot of the results."""

    label: str
    error: str

    def __bool__(self) -> bool:  # a failed task is falsy
        return False


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def make_client(scheduler: str | None = None, n_workers: int | None = None):
    """A ``distributed.Client``: local processes, in-process threads, or a scheduler address."""
    from distributed import Client, LocalCluster

    if scheduler and scheduler != INPROCESS:
        return Client(scheduler)
    processes = scheduler != INPROCESS
    for k, v in WORKER_ENV.items():  # inherited by the worker processes spawned below
        os.environ.setdefault(k, v)
    cluster = LocalCluster(n_workers=n_workers or default_workers(), threads_per_worker=1, processes=processes,
                           dashboard_address=":0")  # any free port: never clashes
    return Client(cluster)


def run_tasks(fn: Callable[..., Any], tasks: Sequence[Any], *, labels: Sequence[str] | None = None,
              scheduler: str | None = None, n_workers: int | None = None, progress: bool = True,
              on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
    """Run ``fn(task)`` for every task on a Dask cluster; results in task order.

    Parameters
    ----------
    fn : callable
        A module-level function (it is pickled to the workers).
    tasks : sequence
        One argument per call.
    labels : sequence of str, optional
        Names of the tasks in progress lines and errors (default ``task 0`` ...).
    scheduler, n_workers
        Where to run (see the module docstring).
    progress : bool
        Print one line to stderr per finished task.
    on_result : callable, optional
        Called as ``on_result(i, result)`` in this process when task ``i`` finishes (its result or
        its :class:`TaskError`), e.g. to save partial results of a long run.
    """
    from distributed import as_completed

    labels = list(labels) if labels is not None else [f"task {i}" for i in range(len(tasks))]
    if len(labels) != len(tasks):
        raise ValueError(f"{len(labels)} labels for {len(tasks)} tasks")
    if not tasks:
        return []
    with make_client(scheduler, n_workers) as client:
        futures = client.map(fn, list(tasks), pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(tasks)
        for done, fut in enumerate(as_completed(futures), 1):
            i = index[fut.key]
            try:
                results[i] = fut.result()
                status = "done"
            except Exception as exc:  # noqa: BLE001 - kept in the task's slot, reported by the caller
                results[i] = TaskError(labels[i], f"{type(exc).__name__}: {exc}")
                status = f"FAILED ({type(exc).__name__})"
            if progress:
                print(f"  [{done}/{len(tasks)}] {labels[i]}: {status}", file=sys.stderr, flush=True)
            if on_result is not None:
                on_result(i, results[i])
        client.cancel(futures)  # release the results before the workers go (else the scheduler warns that it loses them)
        if scheduler is None or scheduler == INPROCESS:
            client.cluster.close()
    return results
