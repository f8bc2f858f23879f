"""Every notebook runs: in-process on mocked fits here (fast tier), headless in a kernel on real fits
in the slow tier (``tests/test_slow.py``)."""

from __future__ import annotations

import ast

import jupytext
import matplotlib
import pytest

from trt_recovery import paths

#: the fit each notebook runs on in the fast tier (None: the notebook needs no posterior)
NOTEBOOK_FITS = {
    "01_data_and_evidence": None,
    "02_success_rates": "mock_success_fit",
    "03_time_to_recovery": "mock_survival_fit",
    "04_concentration": "mock_concentration_fit",
    "05_checks_and_sensitivity": "mock_survival_fit",
    "06_clinical_claims": "mock_survival_fit",
}


def test_every_notebook_is_tested():
    assert {p.stem for p in paths.NOTEBOOKS_DIR.glob("[0-9]*.py")} == set(NOTEBOOK_FITS)


def run_in_process(notebook, parameters: dict, monkeypatch) -> list:
    """Execute a jupytext notebook's code cells in this process, with the parameters cell replaced
    (as papermill would) and IPython's ``display`` capturing what is shown."""
    import IPython.display

    shown: list = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))
    nb = jupytext.read(notebook)
    namespace: dict = {"__name__": "__notebook__"}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = cell.source
        if "parameters" in cell.metadata.get("tags", []):
            source += "\n" + "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
        exec(compile(ast.parse(source), str(notebook), "exec"), namespace)  # noqa: S102 - our own notebooks
    return shown


@pytest.mark.parametrize("notebook", sorted(paths.NOTEBOOKS_DIR.glob("[0-9]*.py")), ids=lambda p: p.stem)
def test_notebook_runs_on_a_mocked_fit(notebook, request, monkeypatch):
    matplotlib.use("Agg")
    fixture = NOTEBOOK_FITS[notebook.stem]
    params = {"analysis": str(request.getfixturevalue(fixture).path)} if fixture else {}
    if notebook.stem == "02_success_rates":  # its last sections read the preservation and pregnancy fits
        params["preservation"] = str(request.getfixturevalue("mock_preservation_fit").path)
        params["pregnancy"] = str(request.getfixturevalue("mock_pregnancy_fit").path)
    if notebook.stem == "05_checks_and_sensitivity":  # every fit points at the same small fit
        p = params.pop("analysis")
        params = {"families": {"a": p, "b": p}, "sensitivity": {"main": p, "again": p},
                  "pnever_sources": {"main": p, "missing": "no_such_fit"}}
    shown = run_in_process(notebook, params, monkeypatch)
    assert any(isinstance(o, matplotlib.figure.Figure) for o in shown), "the notebook shows no figure"
