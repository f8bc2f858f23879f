"""Per-analysis input stamps: make refits an analysis only when the rows it uses change.

``trt-recovery stamps`` harmonises ``data/`` once and, for every analysis config, hashes the rows
the analysis's model would use (:func:`trt_recovery.fitting.frame_hash` of the prepared model
data's ``used`` table, the same ``model_data_hash`` every fit records). Each hash is written to
``analysis/results/stamps/<name>.inputs`` only when it differs from the file's content, so the
file's time stamp moves only when that analysis's inputs do. The Makefile makes each posterior
depend on its stamp (and on its config and the model code) instead of on the raw data tables:
after a data edit, only the analyses whose selected rows changed are refitted.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from trt_recovery import paths


def used_rows(names: list[str] | None = None, dataset=None) -> dict[str, pd.DataFrame]:
    """The rows each analysis's model would use with the current data (prepared, never fitted);
    data are harmonised once for all analyses."""
    from trt_recovery.config import load_config
    from trt_recovery.harmonise import harmonise
    from trt_recovery.models import get_model
    from trt_recovery.validate import load_dataset

    names = names if names is not None else sorted(p.stem for p in paths.ANALYSIS_DIR.glob("*.yaml"))
    outcomes = harmonise(dataset if dataset is not None else load_dataset()).outcomes
    out = {}
    for name in names:
        cfg = load_config(paths.analysis_config(name))
        out[name] = get_model(cfg.model).prepare(outcomes, cfg.data).used
    return out


def input_hashes(names: list[str] | None = None, dataset=None) -> dict[str, str]:
    """Hash of the rows each analysis's model uses, from the current data."""
    from trt_recovery.fitting import frame_hash

    return {name: frame_hash(used) for name, used in used_rows(names, dataset).items()}


def write_stamps(directory: Path | None = None) -> dict[str, bool]:
    """Write every analysis's stamp; returns name -> whether its content changed."""
    directory = directory or paths.STAMPS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    changed = {}
    for name, h in input_hashes().items():
        path = directory / f"{name}.inputs"
        old = path.read_text(encoding="utf-8").strip() if path.exists() else None
        changed[name] = old != h
        if changed[name]:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(h + "\n", encoding="utf-8")
            tmp.replace(path)
    return changed
