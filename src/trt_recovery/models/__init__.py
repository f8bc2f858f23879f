"""Registry of models by name. Each model lives in its own module and registers itself here.

>>> from trt_recovery.models import REGISTRY
>>> sorted(REGISTRY)  # doctest: +SKIP
['binomial_success']
"""

from __future__ import annotations

from trt_recovery.errors import UnknownNameError

from trt_recovery.models.base import ModelData, ModelSpec

REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in REGISTRY:
        raise ValueError(f"model name {spec.name!r} is already registered")
    REGISTRY[spec.name] = spec
    return spec


def get_model(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownNameError(f"unknown model {name!r} (registered: {', '.join(sorted(REGISTRY))})") from None


from trt_recovery.models import binomial_pregnancy, binomial_preservation, binomial_success, lognormal_concentration, survival_cure  # noqa: E402,F401  (register themselves)

__all__ = ["REGISTRY", "ModelData", "ModelSpec", "get_model", "register"]
