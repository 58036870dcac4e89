"""What the registry holds: model, converter and plugin listings, and ``model_info``."""

from __future__ import annotations

import functools
from typing import Any

from ..model.compose import ComposedModel, meta_device
from ..model.flops import count_flops
from ..plugins.host import PluginHost, PluginRecord, default_host
from ..weights.keymaps import Converter
from .build import build_model


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted."""
    return default_host().registry.names("model", pattern)


def get_converter(source: str, model: str) -> Converter:
    """The registered converter between ``source``'s layout (e.g. "torchvision") and ours for ``model``."""
    return default_host().registry.get("converter", f"{source}/{model}").obj


def list_converters(pattern: str = "*") -> list[str]:
    """Registered converter keys (``source/model``) matching ``pattern``, sorted."""
    return default_host().registry.names("converter", pattern)


def list_plugins() -> list[PluginRecord]:
    """Every plugin seen: name, distribution, version, status, hooks, what it provided."""
    return list(default_host().records.values())


def model_info(name: str, *, flops: bool = True) -> dict[str, Any]:
    """Plugin, family, parameter count, GFLOPs, input contract and description of ``name``.

    Both counts come from the model built on the meta device (no weights allocated).
    ``flops=False`` leaves out ``gflops``, whose counting pass costs more than the rest.
    """
    host = default_host()
    model = _meta_model(host, name)
    provenance, meta = model.provenance, model.meta
    info: dict[str, Any] = {
        "name": name,
        "family": meta.family,
        "plugin": provenance.plugin,
        "distribution": provenance.distribution,
        "version": provenance.version,
        "params": sum(p.numel() for p in model.parameters()),
    }
    if flops:
        info["gflops"] = _gflops(host, name)
    info.update(
        num_classes=meta.num_classes,
        input_size=meta.input_size,
        min_input_size=meta.min_input_size,
        mean=meta.mean,
        std=meta.std,
        interpolation=meta.interpolation,
        crop_pct=meta.crop_pct,
        aux_heads=len(model.aux_heads),
        description=meta.description,
        paper=meta.paper,
    )
    return info


@functools.cache
def _meta_model(host: PluginHost, name: str) -> ComposedModel:
    """``name`` built on the meta device, once per host (``host`` keys the cache)."""
    with meta_device():
        return build_model(name)


@functools.cache
def _gflops(host: PluginHost, name: str) -> float:
    model = _meta_model(host, name)
    return count_flops(model, model.meta.input_size) / 1e9
