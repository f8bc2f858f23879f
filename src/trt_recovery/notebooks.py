"""Execute the jupytext notebooks headless (papermill) into ``analysis/results/notebooks``.

The committed form of a notebook is its jupytext ``.py`` (percent format); it is converted to
``.ipynb`` with the project's kernel and executed with the repository root as working directory.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import jupytext
import papermill

from trt_recovery import paths

KERNEL_NAME = "trt-recovery"


def execute_notebook(source: str | Path, parameters: dict[str, Any] | None = None, output: Path | None = None,
                     kernel_name: str = KERNEL_NAME) -> Path:
    """Execute notebook ``source`` (a jupytext ``.py``) and write the executed ``.ipynb``.

    Raises papermill's ``PapermillExecutionError`` (naming the failing cell) when a cell fails.
    The notebook is executed into a temporary file and moved to ``output`` only when every cell
    ran: a failed or killed run never leaves a partial notebook at the target (make would trust
    it); a failed run's notebook is kept as ``<name>.failed.ipynb`` for inspection.
    """
    source = Path(source)
    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {"name": kernel_name, "display_name": "Python (trt-recovery)", "language": "python"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    output = output or paths.EXECUTED_NOTEBOOKS_DIR / f"{source.stem}.ipynb"
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"{source.stem}.ipynb"
        partial = Path(tmp) / f"{source.stem}.out.ipynb"
        jupytext.write(nb, src)
        try:
            papermill.execute_notebook(
                str(src),
                str(partial),
                parameters=parameters or {},
                kernel_name=kernel_name,
                cwd=str(paths.ROOT),
                progress_bar=False,
            )
        except BaseException:
            if partial.exists():
                shutil.copyfile(partial, output.with_name(f"{output.stem}.failed.ipynb"))
            output.unlink(missing_ok=True)
            raise
        shutil.move(str(partial), str(output))
    return output
