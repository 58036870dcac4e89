"""The public entry points: create a model by name, list and describe models and plugins."""

from __future__ import annotations

import functools
import inspect
import os
from dataclasses import replace
from typing import Any

import torch

from .compose import ComposedModel, build, meta_device
from .converters import Converter
from .errors import InvalidOverrideError, SpecError
from .plugins import PluginHost, default_host
from .spec import Component, ModelSpec


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted."""
    return default_host().registry.names("model", pattern)


def get_converter(source: str, model: str) -> Converter:
    """The registered converter between ``source``'s layout (e.g. "torchvision") and ours for ``model``."""
    return default_host().registry.get("converter", f"{source}/{model}").obj


def list_converters(pattern: str = "*") -> list[str]:
    """Registered converter keys (``source/model``) matching ``pattern``, sorted."""
    return default_host().registry.names("converter", pattern)


def list_plugins() -> list[dict[str, Any]]:
    """Every plugin seen: name, distribution, version, status, hooks, what it provided."""
    return [record.as_dict() for record in default_host().records.values()]


def model_spec(name: str, host: PluginHost | None = None, **options: Any) -> ModelSpec:
    """The spec ``name`` builds with ``options`` (the model's own keyword options)."""
    host = host or default_host()
    factory = host.registry.get("model", name).obj
    if isinstance(factory, ModelSpec):
        if options:
            raise InvalidOverrideError(next(iter(options)), f"model {name!r} takes no options")
        return factory
    accepted = _keyword_options(factory)
    for option in options:
        if option not in accepted:
            known = ", ".join(sorted(accepted)) or "none"
            raise InvalidOverrideError(option, f"model {name!r} has no such option (its options: {known})")
    spec = factory(**options)
    if not isinstance(spec, ModelSpec):
        raise SpecError(f"model {name!r}: its builder returned {type(spec).__name__}, not a ModelSpec")
    return spec


def _keyword_options(fn) -> set[str]:
    params = inspect.signature(fn).parameters.values()
    return {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def create(
    name: str,
    *,
    weights: str | os.PathLike | None = None,
    pretrained: bool = False,
    num_classes: int | None = None,
    in_chans: int | None = None,
    features_only: bool = False,
    block: str | None = None,
    stem: str | None = None,
    head: str | None = None,
    **options: Any,
) -> ComposedModel:
    """Build a registered model by name.

    ``block``/``stem``/``head`` swap in another registered component (a block swap
    applies to every stage); other keyword ``options`` are the model's own (for
    example ``groups`` for ResNeXt). ``weights`` is a safetensors file to load;
    ``pretrained=True`` loads ``<REGISTRY_CORE_HOME>/weights/<name>.safetensors``.
    With weights, the model is built on the meta device and takes the file's tensors
    as they are; options left unset follow the file (see ``docs/weights.md``).
    """
    given = {"num_classes": num_classes, "in_chans": in_chans, "block": block, "stem": stem, "head": head}
    create_kwargs = {**{k: v for k, v in given.items() if v is not None}, **options}
    if features_only:
        create_kwargs["features_only"] = True
    if weights is not None or pretrained:
        from .store import pretrained_path
        from .weights import load_weights

        return load_weights(name, weights if weights is not None else pretrained_path(name), **create_kwargs)
    host = default_host()
    spec = swap_components(model_spec(name, host, **options), block=block, stem=stem, head=head, host=host)
    swapped = frozenset(k for k, v in (("block", block), ("stem", stem), ("head", head)) if v is not None)
    model = build(
        spec,
        lambda kind, n: host.registry.get(kind, n).obj,
        num_classes=num_classes,
        in_chans=in_chans,
        features_only=features_only,
        swapped=swapped,
    )
    model.model_name = name
    model.create_kwargs = create_kwargs
    return model


def swap_components(spec: ModelSpec, *, block=None, stem=None, head=None, host=None) -> ModelSpec:
    """``spec`` with every stage's block, the stem or the head replaced by name."""
    host = host or default_host()
    for kind, new in (("block", block), ("stem", stem), ("head", head)):
        if new is not None:
            host.registry.get(kind, new)  # unknown names fail here, with suggestions
    if stem is not None:
        spec = replace(spec, stem=Component(stem, spec.stem.options))
    if head is not None:
        spec = replace(spec, head=Component(head, spec.head.options))
    if block is not None:
        for stage in spec.stages:
            if len(stage.block_names()) > 1:
                raise InvalidOverrideError("block", "this model mixes several kinds of block in a stage, so one block cannot replace them")
        stages = tuple(
            replace(stage, block=block, blocks=tuple(replace(b, block=None) for b in stage.blocks))
            for stage in spec.stages
        )
        spec = replace(spec, stages=stages)
    return spec


def model_info(name: str, *, flops: bool = True) -> dict[str, Any]:
    """Plugin, family, parameter count, GFLOPs, input contract and description of ``name``.

    Both counts come from the model built on the meta device (no weights allocated).
    ``flops=False`` leaves out ``gflops``, whose counting pass costs more than the rest.
    """
    host = default_host()
    provenance = host.registry.get("model", name).provenance
    model = _meta_model(host, name)
    meta = model.meta
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


@functools.lru_cache(maxsize=None)
def _meta_model(host: PluginHost, name: str) -> ComposedModel:
    with meta_device():
        return build(model_spec(name, host), lambda kind, n: host.registry.get(kind, n).obj)


@functools.lru_cache(maxsize=None)
def _gflops(host: PluginHost, name: str) -> float:
    model = _meta_model(host, name)
    return count_flops(model, model.meta.input_size) / 1e9


def count_flops(model: torch.nn.Module, input_size: tuple[int, int, int]) -> int:
    """Floating-point operations (a multiply-add counts 2) of one eval forward pass."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, *input_size, device=device))
    model.train(was_training)
    return counter.get_total_flops()
