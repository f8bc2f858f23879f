"""Analysis configuration: one YAML file per analysis in ``analysis/``, validated here.

A config names the data selection, the registered model, prior overrides, sampler settings and
the convergence checks. Unknown keys, wrong types and impossible values are rejected with a
message naming the file and the key.

Example (``analysis/success_rate.yaml``)::

    name: success_rate
    title: Recovery by the end of follow-up, by strategy
    model: binomial_success
    data:
      populations: [trt, aas, mixed]
    priors: {}
    sampler: {backend: pymc, draws: 1000, tune: 1000, chains: 4, target_accept: 0.9, seed: 20261121}
"""

from __future__ import annotations

import math

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trt_recovery import paths
from trt_recovery.schema import load_schema

BACKENDS = ("pymc", "nutpie", "numpyro")
#: nutpie's mass-matrix adaptations (its ``adaptation`` argument): ``diag`` (a diagonal matrix from the
#: draws' and gradients' variances) or ``low_rank`` (the diagonal corrected by the leading
#: eigenvectors of the draws' and gradients' covariance: the strongly correlated directions).
MASS_MATRICES = ("diag", "low_rank")


def sampler_choice_error(backend: str, mass_matrix: str) -> str | None:
    """Why a backend and mass-matrix adaptation cannot be used together (None: they can)."""
    if backend not in BACKENDS:
        return f"unknown backend {backend!r} (valid: {', '.join(BACKENDS)})"
    if mass_matrix not in MASS_MATRICES:
        return f"unknown adaptation {mass_matrix!r} (valid: {', '.join(MASS_MATRICES)})"
    if mass_matrix != "diag" and backend != "nutpie":
        return f"{mass_matrix!r} is a nutpie adaptation; backend {backend!r} adapts a diagonal"
    return None


class ConfigError(ValueError):
    """An analysis config is invalid."""


@dataclass(frozen=True)
class SamplerConfig:
    """Sampler settings. ``seed`` is required: every fit is reproducible.

    ``mass_matrix`` (nutpie only, :data:`MASS_MATRICES`): the mass-matrix adaptation.
    """

    seed: int
    backend: str = "pymc"
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    cores: int = 2
    target_accept: float = 0.9
    mass_matrix: str = "diag"
    #: NUTS's maximum tree depth (at most 2**depth - 1 leapfrog steps per draw); 10 is every
    #: backend's default
    max_treedepth: int = 10


@dataclass(frozen=True)
class ChecksConfig:
    """Convergence gates; a fit failing any of them is reported as failed.

    ``ebfmi_min``: every chain's E-BFMI must reach it (below 0.3 the momentum resampling explores
    the energy distribution poorly). ``max_treedepth_share``: at most this share of transitions
    may hit the maximum tree depth (more means the sampler is truncating its trajectories).
    """

    rhat_max: float = 1.01
    ess_bulk_min: float = 400.0
    max_divergences: int = 0
    ebfmi_min: float = 0.3
    max_treedepth_share: float = 0.01


@dataclass(frozen=True)
class DataSelection:
    """Which harmonised rows an analysis uses (None: all)."""

    populations: tuple[str, ...] | None = None
    strategies: tuple[str, ...] | None = None
    thresholds: tuple[str, ...] | None = None
    include_secondary: bool = True
    #: study designs left out (e.g. [case_report])
    exclude_designs: tuple[str, ...] = ()


@dataclass(frozen=True)
class AnalysisConfig:
    name: str
    model: str
    sampler: SamplerConfig
    title: str = ""
    data: DataSelection = field(default_factory=DataSelection)
    priors: dict[str, float] = field(default_factory=dict)
    checks: ChecksConfig = field(default_factory=ChecksConfig)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("source")
        return d


_TOP_KEYS = {"name", "title", "model", "data", "priors", "sampler", "checks"}


def _fail(source: str, key: str, msg: str) -> ConfigError:
    return ConfigError(f"{source}: '{key}': {msg}")


def _check_keys(source: str, section: str, given: dict, allowed: set[str]) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise _fail(source, f"{section}.{unknown[0]}" if section else unknown[0], f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _int(source: str, key: str, v: Any, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _fail(source, key, f"must be an integer, got {v!r}")
    if v < minimum:
        raise _fail(source, key, f"must be >= {minimum}, got {v}")
    return v


def _float(source: str, key: str, v: Any, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _fail(source, key, f"must be a number, got {v!r}")
    if not lo < float(v) < hi:
        raise _fail(source, key, f"must lie in ({lo}, {hi}), got {v}")
    return float(v)


def _terms(source: str, key: str, v: Any, vocabulary: str) -> tuple[str, ...] | None:
    if v is None:
        return None
    if not isinstance(v, list) or not v:
        raise _fail(source, key, "must be a non-empty list")
    allowed = load_schema().terms(vocabulary)
    for term in v:
        if str(term) not in allowed:
            raise _fail(source, key, f"unknown {vocabulary} {term!r} (valid: {', '.join(allowed)})")
    return tuple(str(t) for t in v)


def parse_config(raw: Any, source: str = "<config>") -> AnalysisConfig:
    """Validate a config mapping (as read from YAML) and return it typed."""
    from trt_recovery.models import REGISTRY  # late import: models import config

    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: must be a mapping of keys to values")
    _check_keys(source, "", raw, _TOP_KEYS)
    for key in ("name", "model", "sampler"):
        if key not in raw:
            raise _fail(source, key, "is required")
    name = raw["name"]
    if not isinstance(name, str) or not name.isidentifier():
        raise _fail(source, "name", f"must be a simple identifier, got {name!r}")
    model = raw["model"]
    if model not in REGISTRY:
        raise _fail(source, "model", f"unknown model {model!r} (registered: {', '.join(sorted(REGISTRY))})")

    s = raw["sampler"]
    if not isinstance(s, dict):
        raise _fail(source, "sampler", "must be a mapping")
    _check_keys(source, "sampler", s, set(SamplerConfig.__dataclass_fields__))
    if "seed" not in s:
        raise _fail(source, "sampler.seed", "is required (every fit takes an explicit seed)")
    backend, mass_matrix = s.get("backend", SamplerConfig.backend), s.get("mass_matrix", SamplerConfig.mass_matrix)
    # the backend alone first (the diagonal goes with every backend), then the pair
    for key, error in (("backend", sampler_choice_error(backend, "diag")),
                       ("mass_matrix", sampler_choice_error(backend, mass_matrix))):
        if error:
            raise _fail(source, f"sampler.{key}", error)
    sampler = SamplerConfig(
        seed=_int(source, "sampler.seed", s["seed"], 0),
        backend=backend,
        draws=_int(source, "sampler.draws", s.get("draws", SamplerConfig.draws), 1),
        tune=_int(source, "sampler.tune", s.get("tune", SamplerConfig.tune), 0),
        chains=_int(source, "sampler.chains", s.get("chains", SamplerConfig.chains), 1),
        cores=_int(source, "sampler.cores", s.get("cores", SamplerConfig.cores), 1),
        target_accept=_float(source, "sampler.target_accept", s.get("target_accept", SamplerConfig.target_accept), 0.0, 1.0),
        mass_matrix=mass_matrix,
        max_treedepth=_int(source, "sampler.max_treedepth", s.get("max_treedepth", SamplerConfig.max_treedepth), 1),
    )

    c = raw.get("checks") or {}
    if not isinstance(c, dict):
        raise _fail(source, "checks", "must be a mapping")
    _check_keys(source, "checks", c, set(ChecksConfig.__dataclass_fields__))
    checks = ChecksConfig(
        rhat_max=_float(source, "checks.rhat_max", c.get("rhat_max", ChecksConfig.rhat_max), 1.0, 2.0),
        ess_bulk_min=float(_int(source, "checks.ess_bulk_min", c.get("ess_bulk_min", int(ChecksConfig.ess_bulk_min)), 1)),
        max_divergences=_int(source, "checks.max_divergences", c.get("max_divergences", ChecksConfig.max_divergences), 0),
        ebfmi_min=_float(source, "checks.ebfmi_min", c.get("ebfmi_min", ChecksConfig.ebfmi_min), -1e-12, 1.0),
        max_treedepth_share=_float(source, "checks.max_treedepth_share", c.get("max_treedepth_share", ChecksConfig.max_treedepth_share), -1e-12, 1.0 + 1e-12),
    )

    d = raw.get("data") or {}
    if not isinstance(d, dict):
        raise _fail(source, "data", "must be a mapping")
    _check_keys(source, "data", d, set(DataSelection.__dataclass_fields__))
    inc = d.get("include_secondary", True)
    if not isinstance(inc, bool):
        raise _fail(source, "data.include_secondary", f"must be true or false, got {inc!r}")
    data = DataSelection(
        populations=_terms(source, "data.populations", d.get("populations"), "population"),
        strategies=_terms(source, "data.strategies", d.get("strategies"), "strategy"),
        thresholds=_terms(source, "data.thresholds", d.get("thresholds"), "threshold"),
        include_secondary=inc,
        exclude_designs=_terms(source, "data.exclude_designs", d.get("exclude_designs"), "design") or (),
    )

    priors = raw.get("priors") or {}
    if not isinstance(priors, dict):
        raise _fail(source, "priors", "must be a mapping of prior parameter names to numbers")
    defaults = REGISTRY[model].default_priors
    for k, v in priors.items():
        if k not in defaults:
            raise _fail(source, f"priors.{k}", f"not a prior of model {model!r} (valid: {', '.join(sorted(defaults))})")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise _fail(source, f"priors.{k}", f"must be a number, got {v!r}")
        if k.endswith("_loc"):
            continue  # a location may be any number
        if k.endswith("_prob") and not 0 < v < 1:
            raise _fail(source, f"priors.{k}", f"must be a probability strictly between 0 and 1, got {v!r}")
        if k in REGISTRY[model].zero_allowed_priors:
            if v < 0:
                raise _fail(source, f"priors.{k}", f"must be zero or positive, got {v!r}")
        elif not v > 0:
            raise _fail(source, f"priors.{k}", f"must be a positive number, got {v!r}")
    merged = {**defaults, **{k: float(v) for k, v in priors.items()}}

    return AnalysisConfig(
        name=name,
        title=str(raw.get("title", "")),
        model=model,
        data=data,
        priors=merged,
        sampler=sampler,
        checks=checks,
        source=source,
    )


def _merge(base: dict, override: dict) -> dict:
    """``override`` on top of ``base``: mappings merge key by key, anything else is replaced."""
    out = dict(base)
    for k, v in override.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_raw(path: Path, chain: tuple[str, ...] = ()) -> dict:
    """The config mapping of ``path`` with its ``extends:`` parent (another analysis name) merged in."""
    if not path.exists():
        available = sorted(x.stem for x in paths.ANALYSIS_DIR.glob("*.yaml"))
        raise ConfigError(f"{path}: no such analysis config (available: {', '.join(available) or 'none'})")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a mapping of keys to values")
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str) or not parent.isidentifier():
        raise _fail(str(path), "extends", f"must name another analysis, got {parent!r}")
    if parent in chain or parent == path.stem:
        raise _fail(str(path), "extends", f"circular extends: {' -> '.join((*chain, path.stem, parent))}")
    base = _read_raw(path.with_name(f"{parent}.yaml"), (*chain, path.stem))
    base.pop("title", None)
    return _merge(base, raw)


def config_identity(config: AnalysisConfig) -> str:
    """SHA-256 of what a config makes a fit compute (everything but its title and file)."""
    import hashlib
    import json

    d = config.to_dict()
    d.pop("title", None)
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


def load_config(name_or_path: str | Path) -> AnalysisConfig:
    """Load ``analysis/<name>.yaml`` (or a path to a YAML file) and validate it.

    A config may start with ``extends: <other analysis>``: the other config is read first and this
    one's keys override it (mappings key by key), so sensitivity analyses state only what differs.
    """
    p = Path(name_or_path)
    path = p if p.suffix in (".yaml", ".yml") else paths.analysis_config(str(name_or_path))
    raw = _read_raw(path)
    cfg = parse_config(raw, source=str(path))
    if cfg.name != path.stem:
        raise _fail(str(path), "name", f"must equal the file name {path.stem!r}, got {cfg.name!r}")
    return cfg


def main_analyses() -> list[str]:
    """The analyses that stand on their own (configs without ``extends:``)."""
    return [n for n, parent in _extends_map().items() if parent is None]


def sensitivity_analyses() -> list[str]:
    """Sensitivity and model-check variants (configs with ``extends:``): a failed fit of one of
    these is reported as failed without stopping the build."""
    return [n for n, parent in _extends_map().items() if parent is not None]


def _extends_map() -> dict[str, str | None]:
    out = {}
    for p in sorted(paths.ANALYSIS_DIR.glob("*.yaml")):
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        out[p.stem] = raw.get("extends") if isinstance(raw, dict) else None
    return out
