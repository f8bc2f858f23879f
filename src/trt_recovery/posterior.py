"""A saved fit as one object: the posterior, its provenance, and what is needed to rebuild its model.

A posterior file is a netCDF ``xarray.DataTree`` laid out as

* ``/posterior``, ``/sample_stats``, ``/log_likelihood``, ``/observed_data``, ``/prior``: ArviZ groups;
* ``/log_prior``: log density of each top-level prior at every draw (power-scaling sensitivity,
  :mod:`trt_recovery.power_scaling`);
* ``/provenance``: attributes ``config``, ``sampler``, ``packages``, ``convergence``, ``coords``
  (JSON text: nested mappings cannot be netCDF attributes) and ``platform``; child nodes
  ``used_rows``, ``exclusions`` and ``arms`` (tables, one row per dimension entry ``row``) and
  ``terms/<name>`` (the likelihood-term tables);
* root attributes following the ArviZ schema's recommendations (``created_at``,
  ``creation_library``, ``creation_library_version``, ``inference_library``,
  ``inference_library_version``) plus this project's identity fields: ``analysis``, ``model``,
  ``model_identity`` (hash of the model's source), ``config_identity`` (hash of the config),
  ``data_hash`` (raw tables), ``model_data_hash`` (rows the model used), ``data_source``,
  ``seed``, ``git_commit``, ``sha256`` (checksum of the posterior draws) and ``format``.

:func:`load_fit` returns a :class:`Fit`; it refuses a file whose checks failed, whose format is
older, whose checksum does not match its draws, or (for analyses of the repository's data) whose
model code, config or data differ from the current ones, saying how to refresh it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from trt_recovery import paths

FORMAT = 2
TABLES = ("used_rows", "exclusions", "arms")


class FitFailedError(RuntimeError):
    """A fit did not pass its convergence checks."""


class StaleFitError(RuntimeError):
    """A saved posterior no longer matches the current model code, config or data (or is unreadable)."""


# ------------------------------------------------------------------------------------------------
# tables <-> datasets


def frame_to_dataset(df: pd.DataFrame) -> xr.Dataset:
    """A table as a Dataset over dimension ``row``; column kinds are kept in ``attrs['kinds']``."""
    df = df.reset_index(drop=False) if df.index.name else df.reset_index(drop=True)
    data, kinds = {}, {}
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_bool_dtype(s):
            kinds[c] = "bool"
            data[c] = ("row", s.astype(bool).to_numpy())
        elif pd.api.types.is_integer_dtype(s) and s.dtype.name.startswith("Int"):
            kinds[c] = "Int64"
            data[c] = ("row", s.astype("float64").to_numpy())
        elif pd.api.types.is_numeric_dtype(s):
            kinds[c] = "float"
            data[c] = ("row", s.astype("float64").to_numpy())
        else:
            kinds[c] = "str"
            data[c] = ("row", np.array(["" if pd.isna(v) else str(v) for v in s], dtype=object).astype(str))
    ds = xr.Dataset(data, coords={"row": np.arange(len(df))})
    ds.attrs["kinds"] = json.dumps(kinds)
    ds.attrs["columns"] = json.dumps(list(df.columns))
    return ds


def dataset_to_frame(ds: xr.Dataset) -> pd.DataFrame:
    kinds = json.loads(ds.attrs.get("kinds", "{}"))
    cols = json.loads(ds.attrs.get("columns", "[]"))
    out = {}
    for c in cols:
        v = ds[c].values if c in ds else np.array([])
        k = kinds.get(c, "str")
        if k == "str":
            out[c] = pd.Series([np.nan if x == "" else x for x in v.astype(str)], dtype=object)
        elif k == "Int64":
            out[c] = pd.array(np.where(np.isnan(v.astype(float)), np.nan, v), dtype="Float64").astype("Int64")
        elif k == "bool":
            out[c] = v.astype(bool)
        else:
            out[c] = v.astype(float)
    return pd.DataFrame(out, columns=cols)


def draws_checksum(tree: xr.DataTree) -> str:
    """SHA-256 of the posterior draws (variable names, shapes and values)."""
    h = hashlib.sha256()
    post = tree["posterior"].to_dataset()
    for name in sorted(post.data_vars):
        v = np.ascontiguousarray(post[name].values)
        h.update(name.encode())
        h.update(str(v.shape).encode())
        h.update(v.tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------
# The fit object


@dataclass
class Fit:
    """A fitted (or loaded) analysis. ``tree`` is the DataTree written to disk."""

    tree: xr.DataTree
    path: Path | None = None
    _model_data: Any = field(default=None, repr=False)

    # ---- identity and provenance --------------------------------------------------------------
    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.tree.attrs)

    @property
    def analysis(self) -> str:
        return str(self.tree.attrs["analysis"])

    @property
    def model(self) -> str:
        return str(self.tree.attrs["model"])

    @property
    def seed(self) -> int:
        return int(self.tree.attrs["seed"])

    @property
    def data_hash(self) -> str:
        return str(self.tree.attrs["data_hash"])

    def _prov(self, key: str) -> Any:
        return json.loads(self.tree["provenance"].attrs[key])

    @cached_property
    def sampler(self) -> dict[str, Any]:
        return self._prov("sampler")

    @cached_property
    def config_dict(self) -> dict[str, Any]:
        return self._prov("config")

    @cached_property
    def packages(self) -> dict[str, str]:
        return self._prov("packages")

    @cached_property
    def convergence(self) -> dict[str, Any]:
        return self._prov("convergence")

    @cached_property
    def coords(self) -> dict[str, list[str]]:
        return self._prov("coords")

    @property
    def priors(self) -> dict[str, float]:
        return dict(self.config_dict["priors"])

    @property
    def passed(self) -> bool:
        return bool(self.convergence["passed"])

    @property
    def spec(self):
        from trt_recovery.models import get_model

        return get_model(self.model)

    # ---- tables --------------------------------------------------------------------------------
    def _table(self, name: str) -> pd.DataFrame:
        node = self.tree["provenance"]
        if name not in node.children:
            return pd.DataFrame()
        return dataset_to_frame(node[name].to_dataset())

    @cached_property
    def used(self) -> pd.DataFrame:
        return self._table("used_rows")

    @cached_property
    def exclusions(self) -> pd.DataFrame:
        t = self._table("exclusions")
        return t if len(t.columns) else pd.DataFrame(columns=["outcome_id", "arm_id", "study_id", "reason"])

    @cached_property
    def arms(self) -> pd.DataFrame:
        t = self._table("arms")
        return t.set_index("arm_id") if "arm_id" in t else t

    @cached_property
    def terms(self) -> dict[str, pd.DataFrame]:
        node = self.tree["provenance"]
        if "terms" not in node.children:
            return {}
        return {k: dataset_to_frame(v.to_dataset()) for k, v in node["terms"].children.items()}

    # ---- draws ---------------------------------------------------------------------------------
    @property
    def posterior(self) -> xr.Dataset:
        return self.tree["posterior"].to_dataset()

    @property
    def prior(self) -> xr.Dataset:
        return self.tree["prior"].to_dataset()

    def model_data(self):
        """The model's prepared data, as saved (so the model can be rebuilt exactly)."""
        if self._model_data is None:
            from trt_recovery.models.base import ModelData

            terms = {k: v for k, v in self.terms.items()}
            arms = self.arms if len(self.arms.columns) else None
            self._model_data = ModelData(used=self.used, exclusions=self.exclusions, coords=self.coords,
                                         arms=arms, terms=terms)
        return self._model_data

    def build_model(self, predict: Any = None):
        return self.spec.build(self.model_data(), self.priors, predict=predict)

    def predictions(self, var_names: list[str], predict: Any = True, seed: int = 0, group: str = "posterior") -> xr.Dataset:
        """Draws of the model's prediction variables, computed through the model's graph.

        The model is rebuilt with its prediction block (``predict``, model-specific) and the
        variables ``var_names`` (deterministics of that block) are evaluated for every draw of
        ``group`` (``posterior`` or ``prior``), vectorised over chain and draw
        (``pm.compute_deterministics``). Variables that only the prediction block declares (a new
        study's effect, effects of levels without data, splits of the threshold ladder) do not
        depend on the data or on other parameters: they are drawn from their prior first, with
        ``seed``, one value per draw. Every sampled variable of the fit must be in ``group``.
        """
        import pymc as pm

        model = self.build_model(predict=predict)
        trace = self.tree[group].to_dataset()
        fit_free = set(self._prov("free_variables"))
        missing = [v for v in fit_free if v not in trace]
        if missing:
            raise StaleFitError(f"{self.describe_source()}: the saved draws lack {missing}; refit (`make fit`)")
        new = [rv for rv in model.free_RVs if rv.name not in trace]
        if any(rv.name in fit_free for rv in new):  # pragma: no cover - guarded by the check above
            raise StaleFitError(f"{self.describe_source()}: prediction variables clash with the fit's")
        sizes = (trace.sizes["chain"], trace.sizes["draw"])
        keep = [v for v in trace.data_vars if v in model.named_vars]
        trace = trace[keep]
        if new:
            from pymc.distributions.shape_utils import change_dist_size

            batched = [change_dist_size(rv, (sizes[0] * sizes[1],), expand=True) for rv in new]
            drawn = pm.draw(batched, random_seed=seed)
            drawn = drawn if isinstance(drawn, list) else [drawn]
            for rv, values in zip(new, drawn, strict=True):
                dims = model.named_vars_to_dims.get(rv.name, ())
                values = np.asarray(values).reshape(sizes + np.shape(values)[1:])
                extra = tuple(dims) if dims else tuple(f"{rv.name}_dim_{i}" for i in range(values.ndim - 2))
                coords = {d: list(model.coords[d]) for d in dims if d in model.coords}
                trace[rv.name] = xr.DataArray(values, dims=("chain", "draw", *extra), coords=coords)
        out = pm.compute_deterministics(trace, var_names=var_names, model=model, progressbar=False)
        return out

    def view(self, used: pd.DataFrame) -> Fit:
        """This fit with only some of its used rows (``used``: what the summaries count as evidence),
        its draws and model unchanged. Leave-one-study-out reads the importance-weighted posterior
        without a study through such a view, so its headline numbers are those a refit would report
        (a cell with no rows left is not among them)."""
        out = Fit(tree=self.tree, path=None, _model_data=self.model_data())
        out.__dict__["used"] = used.reset_index(drop=True)  # the cached property, set
        return out

    # ---- descriptions --------------------------------------------------------------------------
    def describe_source(self) -> str:
        return str(self.path) if self.path else f"fit '{self.analysis}'"

    def summary_line(self) -> str:
        """One line a notebook prints under its title: what was fitted, how, and whether it converged."""
        c = self.convergence
        return (
            f"model {self.model}, seed {self.seed}, backend {self.sampler['backend']}, "
            f"data hash {self.data_hash[:12]}; R-hat max {c['rhat_max']:.3f}, min bulk ESS "
            f"{c['ess_bulk_min']:.0f}, divergences {c['divergences']} "
            f"({'checks passed' if c['passed'] else 'CHECKS FAILED'}); "
            f"{len(self.used)} rows used, {len(self.exclusions)} excluded"
        )


# ------------------------------------------------------------------------------------------------
# saving and loading


def attach_provenance(tree: xr.DataTree, *, attrs: dict[str, Any], provenance: dict[str, Any],
                      tables: dict[str, pd.DataFrame], terms: dict[str, pd.DataFrame]) -> xr.DataTree:
    """Write root attributes, the provenance node and its tables into ``tree`` (in place)."""
    prov = xr.DataTree(name="provenance")
    for k, v in provenance.items():
        prov.attrs[k] = v if isinstance(v, str) else json.dumps(v, default=str)
    for name, df in tables.items():
        prov[name] = xr.DataTree(frame_to_dataset(df))
    if terms:
        tnode = xr.DataTree(name="terms")
        for name, df in terms.items():
            if len(df):
                tnode[name] = xr.DataTree(frame_to_dataset(df))
        prov["terms"] = tnode
    tree["provenance"] = prov
    tree.attrs.update({k: (v if isinstance(v, (str, int, float)) else json.dumps(v, default=str)) for k, v in attrs.items()})
    tree.attrs["format"] = FORMAT
    tree.attrs["sha256"] = draws_checksum(tree)
    return tree


def save_tree(tree: xr.DataTree, target: Path) -> Path:
    """Write atomically: to a temporary file next to ``target``, then rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tree.to_netcdf(tmp)
    tmp.replace(target)
    return target


#: An analysis name: what a file stem in analysis/ may be (never a path).
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*", re.ASCII)


def check_name(name: str) -> str:
    """``name`` if it is a plain analysis name; else a ValueError (a name like ``../../x`` must not
    address files outside the project)."""
    if NAME_RE.fullmatch(str(name)) is None or ".." in str(name):
        from trt_recovery.errors import BadInputError

        raise BadInputError(f"{name!r} is not an analysis name (letters, digits, '_', '-', '.'; no paths)")
    return str(name)


def resolve_path(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    return p if p.suffix == ".nc" else paths.posterior_file(check_name(str(name_or_path)))


@lru_cache(maxsize=8)
def _read_tree(path: str, mtime_ns: int, size: int) -> xr.DataTree:
    """The file's content, read once per process for a given modification time and size."""
    with xr.open_datatree(path) as dt:
        return dt.load().copy()


def open_fit(path: Path) -> Fit:
    """Read a posterior file fully into memory (the file is closed afterwards)."""
    try:
        st = Path(path).stat()
        tree = _read_tree(str(Path(path).resolve()), st.st_mtime_ns, st.st_size).copy(deep=False)
    except Exception as exc:  # noqa: BLE001 - any reader error means the file cannot be trusted
        raise StaleFitError(f"{path}: unreadable posterior ({type(exc).__name__}: {exc}); "
                            "delete it and run `make fit` to rebuild it") from None
    if tree.attrs.get("format") != FORMAT or "provenance" not in tree.children:
        raise StaleFitError(f"{path}: written by an older version of trt-recovery (no provenance groups); "
                            "run `make fit` to refit it")
    if tree.attrs.get("sha256") != draws_checksum(tree):
        raise StaleFitError(f"{path}: checksum mismatch (the draws were changed or corrupted); "
                            "delete it and run `make fit` to rebuild it")
    return Fit(tree=tree, path=path)


def staleness(fit: Fit) -> list[str]:
    """Why a fit of the repository's data no longer matches the current code, config or data."""
    from trt_recovery.config import config_identity, load_config
    from trt_recovery.validate import data_hash

    reasons = []
    if fit.tree.attrs.get("model_identity") != fit.spec.identity():
        reasons.append(f"the code of model '{fit.model}' changed since it was fitted")
    if fit.tree.attrs.get("data_source") == "repository":
        if fit.data_hash != data_hash():
            # data/ changed: stale only if the rows this analysis uses changed (other edits do not
            # touch it; make does not refit it either, see trt_recovery.stamps)
            from trt_recovery.stamps import input_hashes

            try:
                current = input_hashes([fit.analysis])[fit.analysis]
            except Exception as exc:  # noqa: BLE001 - the config or data no longer prepare: say so
                current = f"unavailable ({exc})"
            if current != fit.tree.attrs.get("model_data_hash"):
                reasons.append("the data rows this analysis uses changed since it was fitted")
        cfg_path = paths.analysis_config(fit.analysis)
        if cfg_path.exists() and fit.tree.attrs.get("config_identity") != config_identity(load_config(cfg_path)):
            reasons.append(f"analysis/{fit.analysis}.yaml changed since it was fitted")
    return reasons


def load_fit(name_or_path: str | Path, *, allow_failed: bool = False, check_current: bool = True) -> Fit:
    """Open a saved fit; refuse one that failed its checks or no longer matches code, config or data."""
    path = resolve_path(name_or_path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no posterior; run `make fit` (or `trt-recovery fit {path.stem}`) first")
    fit = open_fit(path)
    if not fit.passed and not allow_failed:
        raise FitFailedError(f"{path}: this posterior failed its convergence checks "
                             f"({'; '.join(c['check'] for c in fit.convergence['checks'] if not c['passed'])})")
    if check_current:
        reasons = staleness(fit)
        if reasons:
            raise StaleFitError(f"{path} is stale: {'; '.join(reasons)}. Run `make fit` "
                                f"(or `trt-recovery fit {fit.analysis}`) to refresh it")
    return fit
