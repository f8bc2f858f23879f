"""The Makefile's scheduling, run by GNU make on a copy of the repository's file names with a fake CLI.

Every file that git tracks is recreated empty (the analysis configs with their text, which the
Makefile reads), and ``.venv/bin/trt-recovery`` is a shell script that logs its arguments and writes
the target it is asked for. No Python of the package runs: what is tested is which recipes make
starts, and in which order.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from trt_recovery import paths

pytestmark = pytest.mark.skipif(shutil.which("make") is None or shutil.which("git") is None,
                                reason="needs GNU make and git")

FAKE_CLI = r"""#!/bin/bash
set -eu
echo "start $*" >> "$LOG"
case "$1" in
  check-posteriors) [ -z "${DAMAGED:-}" ] || rm -f "$DAMAGED" ;;
  fit) sleep 1
       if [ "${3:-}" = "--allow-failure" ]; then touch "$5"; else touch "analysis/results/posteriors/$2.nc"; fi ;;
esac
echo "end $*" >> "$LOG"
"""


def _tree(tmp_path: Path) -> Path:
    """A copy of the repository's file names (empty files; configs and Makefile with their text),
    with every posterior saved and up to date."""
    root = paths.ROOT
    files = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        keep = name == "Makefile" or (name.startswith("analysis/") and name.endswith(".yaml"))
        if keep:
            shutil.copyfile(root / name, target)
        else:
            target.touch()
    analyses = sorted(p.stem for p in (tmp_path / "analysis").glob("*.yaml"))
    cli = tmp_path / ".venv/bin/trt-recovery"
    cli.parent.mkdir(parents=True)
    cli.write_text(FAKE_CLI)
    cli.chmod(0o755)
    results = tmp_path / "analysis/results"
    (results / "stamps").mkdir(parents=True)
    (results / "posteriors").mkdir()
    later = [tmp_path / ".venv/.installed", results / "stamps/.refreshed"]
    later += [results / "stamps" / f"{a}.inputs" for a in analyses]
    for a in analyses:
        sensitivity = "\nextends:" in "\n" + (tmp_path / "analysis" / f"{a}.yaml").read_text()
        later.append(results / "posteriors" / (f"{a}.status.json" if sensitivity else f"{a}.nc"))
    t0 = os.stat(tmp_path / "Makefile").st_mtime - 1000  # in the past: a refit is then the newest file
    for name in files:
        os.utime(tmp_path / name, (t0, t0))
    for i, path in enumerate(later, 1):  # after the sources: the environment, stamps, posteriors
        path.touch()
        os.utime(path, (t0 + i, t0 + i))
    return tmp_path


def _make(tree: Path, *args: str, **env: str) -> list[str]:
    log = tree / "cli.log"
    log.unlink(missing_ok=True)
    outer = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")  # set when the tests run under `make test`
    base = {k: v for k, v in os.environ.items() if k not in outer}
    subprocess.run(["make", "--no-print-directory", *args], cwd=tree, check=True, capture_output=True, text=True,
                   env={**base, "LOG": str(log), **env}, timeout=120)
    return log.read_text().splitlines() if log.exists() else []


def test_a_damaged_posterior_is_refitted_even_with_parallel_jobs(tmp_path):
    tree = _tree(tmp_path)
    damaged = tree / "analysis/results/posteriors/survival.nc"
    log = _make(tree, "fit", JOBS="2", DAMAGED=str(damaged))
    assert log[:2] == ["start check-posteriors", "end check-posteriors"]
    assert [line for line in log if line.startswith("start fit")] == ["start fit survival"]
    assert damaged.exists()
    assert _make(tree, "fit", JOBS="2") == ["start check-posteriors", "end check-posteriors"]  # all up to date


def test_fits_run_side_by_side_and_one_at_a_time_with_jobs_1(tmp_path):
    tree = _tree(tmp_path)
    for a in ("pregnancy", "preservation"):
        (tree / "analysis/results/posteriors" / f"{a}.nc").unlink()

    def overlapped(log: list[str]) -> bool:
        running, most = 0, 0
        for line in log:
            if line.startswith("start fit"):
                running += 1
                most = max(most, running)
            elif line.startswith("end fit"):
                running -= 1
        return most > 1

    log = _make(tree, "fit", JOBS="2")
    assert sorted(line for line in log if line.startswith("end fit")) == ["end fit pregnancy", "end fit preservation"]
    assert overlapped(log)
    for a in ("pregnancy", "preservation"):
        (tree / "analysis/results/posteriors" / f"{a}.nc").unlink()
    log = _make(tree, "fit", JOBS="1")
    assert len([line for line in log if line.startswith("end fit")]) == 2 and not overlapped(log)


def test_all_validates_and_checks_first_and_lists_the_outputs_last(tmp_path):
    tree = _tree(tmp_path)
    (tree / "analysis/results/posteriors/survival.nc").unlink()
    log = [line for line in _make(tree, "all", JOBS="2") if line.startswith("start")]
    first_fit = log.index("start fit survival")
    assert {"start validate", "start check-posteriors"} <= set(log[:first_fit])
    assert log[-1] == "start outputs" and log.count("start outputs") == 1
    assert "start report survival" in log and "start site" in log
