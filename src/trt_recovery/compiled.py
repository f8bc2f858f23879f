"""Compile a model once, refit it to other data: nutpie's compiled models reused across fits.

Compiling the survival model for nutpie (PyTensor graph, gradient, Numba) takes 30-50 s on these
machines, longer than sampling one SBC replication (about 15 s). Fits whose graphs differ only in
the values of their ``pm.Data`` variables can share one compiled model and swap the data in
(``compiled.with_data``): in this package, the same analysis sampled again in one process (another
seed, ``make bench`` after timing the compilation) or with other observation weights. The
survival model's observed values are constants of its graph, not data, so SBC replications and
leave-one-study-out refits are other graphs and are compiled each time: holding every array as
data was tried and made compilation and every gradient slower than compiling anew (measured in
the docstring of :mod:`trt_recovery.models.survival_cure`).

Whether two models are "the same graph with other data" is decided from the graphs, not from
names: :func:`same_graph` requires the same free variables (names, shapes, transforms), the same
deterministics and coordinates (observation dimensions excepted, whose length is data), the same
data variables, and PyTensor's ``equal_computations`` to find the log-density and the
deterministics identical once each model's data variables and value variables are paired by name.
Any constant that differs (a prior, a covariate baked into the graph, a term present in one model
only) makes them different graphs, and the model is compiled anew.

:func:`sample_nutpie` is what ``pm.sample(nuts_sampler="nutpie")`` does (same compiled function,
same seed derivation, same groups and attributes), minus the step-method assignment PyMC runs
first, plus the cache. The cache lives in the process (a Dask worker keeps its own across tasks).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from trt_recovery.config import SamplerConfig

#: dimensions whose length is data (a model's observations): allowed to differ between two models
#: that share a compiled graph
DATA_DIM_SUFFIX = "_obs"


def _data_vars(model) -> dict[str, Any]:
    """The model's data variables and the lengths of its dimensions (shared variables that the
    log-density reads, e.g. to broadcast a term over its observations), by name."""
    from pytensor.compile.sharedvalue import SharedVariable

    out = {v.name: v for v in model.data_vars}
    out.update({name: v for name, v in model.dim_lengths.items() if isinstance(v, SharedVariable)})
    return out


def _outputs(model):
    """The log-density and the deterministics, as functions of value and data variables."""
    return [model.logp(), *model.replace_rvs_by_values(model.deterministics)]


def _structure(model) -> tuple:
    """What must be equal before graphs are compared (cheap, hashable)."""
    point = model.initial_point()
    coords = tuple(sorted((k, tuple(map(str, v))) for k, v in model.coords.items()
                          if not k.endswith(DATA_DIM_SUFFIX) and v is not None))
    return (tuple((v.name, point[v.name].shape) for v in model.value_vars),
            tuple(d.name for d in model.deterministics),
            tuple(sorted((n, v.ndim, str(v.dtype)) for n, v in _data_vars(model).items())),
            coords)


def same_graph(a, b, outputs_a=None, outputs_b=None) -> bool:
    """True when models ``a`` and ``b`` differ only in the values of their data variables
    (``outputs_*``: their :func:`_outputs`, when already built)."""
    from pytensor.graph.basic import equal_computations

    if _structure(a) != _structure(b):
        return False
    da, db = _data_vars(a), _data_vars(b)
    names = sorted(da)
    in_a = [*a.value_vars, *(da[n] for n in names)]
    in_b = [*b.value_vars, *(db[n] for n in names)]
    return equal_computations(outputs_a if outputs_a is not None else _outputs(a),
                              outputs_b if outputs_b is not None else _outputs(b), in_a, in_b)


@dataclass
class _Entry:
    model: Any
    outputs: list
    compiled: Any
    structure: tuple


@dataclass
class CompiledModels:
    """A cache of nutpie-compiled models; :meth:`compiled_for` returns one ready for a model."""

    entries: list[_Entry] = field(default_factory=list)
    #: compiled models kept (the most recent ones): each holds its model and Numba code in memory
    max_entries: int = 4
    compiles: int = 0
    reuses: int = 0

    def compiled_for(self, model):
        """The compiled model of ``model``: a cached one with ``model``'s data swapped in when
        :func:`same_graph` says it may, else a fresh compilation (kept for later fits)."""
        import nutpie

        structure = _structure(model)
        outputs = None
        for entry in self.entries:
            if entry.structure != structure:
                continue
            outputs = outputs if outputs is not None else _outputs(model)
            if same_graph(entry.model, model, entry.outputs, outputs):
                self.reuses += 1
                reads = {var.name for var in entry.compiled.shared_var_keys}  # what the compiled functions read
                return entry.compiled.with_data(**{n: v.get_value() for n, v in _data_vars(model).items() if n in reads})
        compiled = nutpie.compile_pymc_model(model)
        self.compiles += 1
        self.entries.append(_Entry(model, outputs if outputs is not None else _outputs(model), compiled, structure))
        del self.entries[:-self.max_entries]
        return compiled


#: the process's cache (fits in one process, and each Dask worker's tasks, share it)
CACHE = CompiledModels()


def sample_nutpie(model, *, draws: int, tune: int, chains: int, cores: int, seed: int,
                  target_accept: float, mass_matrix: str = SamplerConfig.mass_matrix,
                  max_treedepth: int = SamplerConfig.max_treedepth,
                  cache: CompiledModels | None = CACHE):
    """NUTS with nutpie, as ``pm.sample(nuts_sampler="nutpie")`` runs it, reusing a compiled model.

    The seed passed to nutpie is derived from ``seed`` as PyMC derives it, so a fit gives the same
    draws through either route (with the diagonal mass matrix, the one ``pm.sample`` adapts).
    ``mass_matrix``: nutpie's adaptation (:data:`trt_recovery.config.MASS_MATRICES`).
    ``max_treedepth``: nutpie's ``maxdepth``. ``cache=None`` compiles without keeping the result.
    """
    import nutpie
    from pymc.backends.arviz import patch_nutpie_idata
    from pymc.util import get_random_generator

    compiled = (cache if cache is not None else CompiledModels()).compiled_for(model)
    chain_seed = int(get_random_generator(seed).spawn(chains)[0].integers(2**30))  # as pm.sample derives it
    t0 = time.time()
    idata = nutpie.sample(compiled, draws=draws, tune=max(tune, 1), chains=chains, cores=cores,
                          seed=chain_seed, save_warmup=False,
                          store_unconstrained=False, progress_bar=False, target_accept=target_accept,
                          adaptation=mass_matrix, maxdepth=max_treedepth)
    patch_nutpie_idata(idata, model, sampling_time=time.time() - t0)
    return idata


__all__ = ["CACHE", "CompiledModels", "same_graph", "sample_nutpie"]
