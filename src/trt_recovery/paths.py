"""Every directory and file location the project uses, in one place.

No other module builds a path from the working directory: they import from here. The repository
root is found from this file's location (``src/trt_recovery/paths.py``), and can be overridden
with the ``TRT_RECOVERY_ROOT`` environment variable (used by tests that build a scratch tree).
"""

from __future__ import annotations

import os
from pathlib import Path


def _find_root() -> Path:
    env = os.environ.get("TRT_RECOVERY_ROOT")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2]


ROOT: Path = _find_root()


def enclosing_tree(start: Path | None = None) -> Path | None:
    """The project tree (a folder with ``data/schema.yaml`` and ``src/trt_recovery/``) that
    contains ``start`` (default: the working directory), if any."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "data" / "schema.yaml").is_file() and (d / "src" / "trt_recovery").is_dir():
            return d
    return None


def tree_mismatch(start: Path | None = None) -> str | None:
    """Why a command must not run here, or None: the working directory lies in one copy of the
    project while the package (hence every path it reads and writes) comes from another copy, as
    when a tree is copied but the environment's editable install still points at the original.
    Setting ``TRT_RECOVERY_ROOT`` chooses the tree explicitly."""
    if os.environ.get("TRT_RECOVERY_ROOT"):
        return None
    tree = enclosing_tree(start)
    if tree is None or tree == ROOT:
        return None
    return (f"this command runs inside the project tree {tree}, but the trt_recovery package in use belongs to "
            f"{ROOT} (its environment's install points there), so it would read and write {ROOT}. "
            f"Use the tree's own environment (cd {tree} && make env, then {tree}/.venv/bin/trt-recovery), "
            f"or set TRT_RECOVERY_ROOT={tree} to work on this tree with this code.")

DATA_DIR: Path = ROOT / "data"
SCHEMA_FILE: Path = DATA_DIR / "schema.yaml"
STUDIES_FILE: Path = DATA_DIR / "studies.csv"
ARMS_FILE: Path = DATA_DIR / "arms.csv"
OUTCOMES_FILE: Path = DATA_DIR / "outcomes.csv"

ANALYSIS_DIR: Path = ROOT / "analysis"
NOTEBOOKS_DIR: Path = ROOT / "notebooks"
CERTAINTY_RULES: Path = ANALYSIS_DIR / "certainty" / "rules.yaml"

RESULTS_DIR: Path = ANALYSIS_DIR / "results"
DERIVED_DIR: Path = RESULTS_DIR / "data"
POSTERIORS_DIR: Path = RESULTS_DIR / "posteriors"
FIGURES_DIR: Path = RESULTS_DIR / "figures"
TABLES_DIR: Path = RESULTS_DIR / "tables"
EXECUTED_NOTEBOOKS_DIR: Path = RESULTS_DIR / "notebooks"
STAMPS_DIR: Path = RESULTS_DIR / "stamps"
CALCULATOR_DIR: Path = RESULTS_DIR / "calculator"
SITE_DIR: Path = RESULTS_DIR / "site"
#: the package's own source (the code in use, which TRT_RECOVERY_ROOT does not move)
PACKAGE_DIR: Path = Path(__file__).resolve().parent


def analysis_config(name: str) -> Path:
    """Path of the config file of analysis ``name`` (``analysis/<name>.yaml``)."""
    return ANALYSIS_DIR / f"{name}.yaml"


def posterior_file(name: str) -> Path:
    """Path of the saved posterior (netCDF) of analysis ``name``."""
    return POSTERIORS_DIR / f"{name}.nc"


def ensure_output_dirs() -> None:
    """Create every output directory (they are ignored by git)."""
    for d in (DERIVED_DIR, POSTERIORS_DIR, FIGURES_DIR, TABLES_DIR, EXECUTED_NOTEBOOKS_DIR, CALCULATOR_DIR, SITE_DIR):
        d.mkdir(parents=True, exist_ok=True)
