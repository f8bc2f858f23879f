"""Per-analysis input stamps: make refits an analysis only when what its fit depends on changes.

``trt-recovery stamps`` harmonises ``data/`` once and, for every analysis config, writes three
lines to ``analysis/results/stamps/<name>.inputs``:

* ``rows``: the hash of the rows the analysis's model would use
  (:func:`trt_recovery.fitting.frame_hash` of the prepared model data's ``used`` table, the same
  ``model_data_hash`` every fit records);
* ``model``: the identity of its model's code (:meth:`trt_recovery.models.base.ModelSpec.identity`,
  the hash of the modules that define that model, recorded by every fit);
* ``config``: the identity of its resolved config (``extends:`` included).

A stamp is rewritten only when its content differs, so its time stamp moves only when that
analysis's inputs do. The Makefile makes each posterior depend on its stamp instead of on the raw
data tables and on every model's code: after a data edit only the analyses whose selected rows
changed are refitted, and after a code edit only the analyses whose model's code changed (an edit
of the binomial model no longer refits the survival fits). These are the three reasons
:func:`trt_recovery.posterior.staleness` gives, so make and the staleness check agree.
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


def stamp_texts(names: list[str] | None = None, dataset=None) -> dict[str, str]:
    """The content of each analysis's stamp: rows hash, model identity and config identity."""
    from trt_recovery.config import config_identity, load_config
    from trt_recovery.models import get_model

    out = {}
    for name, h in input_hashes(names, dataset).items():
        cfg = load_config(paths.analysis_config(name))
        out[name] = f"rows {h}\nmodel {get_model(cfg.model).identity()}\nconfig {config_identity(cfg)}\n"
    return out


def write_stamps(directory: Path | None = None) -> dict[str, bool]:
    """Write every analysis's stamp; returns name -> whether its content changed."""
    directory = directory or paths.STAMPS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    changed = {}
    for name, text in stamp_texts().items():
        path = directory / f"{name}.inputs"
        old = path.read_text(encoding="utf-8") if path.exists() else None
        changed[name] = old != text
        if changed[name]:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
    return changed
