"""The test suite's own machinery: a session fixture shared by pytest-xdist workers through a file."""

from __future__ import annotations

import uuid

import pytest

from helpers import shared_across_workers


def test_a_shared_value_is_built_once_then_loaded_and_a_failed_build_is_retried(tmp_path_factory):
    name = f"probe-{uuid.uuid4().hex}.txt"  # the shared directory belongs to the whole run: a name of its own
    built = []

    def make(path):
        built.append(path)
        path.write_text("value")
        return "value"

    def failing(path):
        path.write_text("half")
        raise RuntimeError("build failed")

    with pytest.raises(RuntimeError, match="build failed"):
        shared_across_workers(tmp_path_factory, "gw0", name, failing, lambda p: p.read_text())
    # the half-written file is not taken for a value: the next worker builds it again
    assert shared_across_workers(tmp_path_factory, "gw1", name, make, lambda p: p.read_text()) == "value"
    assert shared_across_workers(tmp_path_factory, "gw0", name, make, lambda p: "loaded:" + p.read_text()) == "loaded:value"
    assert len(built) == 1
    # without xdist each call builds in a directory of its own
    assert shared_across_workers(tmp_path_factory, "master", name, make, lambda p: "loaded") == "value"
    assert len(built) == 2 and built[1].parent != built[0].parent
