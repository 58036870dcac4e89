"""Building a registered model from its name and options: no files, no weights.

``build_model`` resolves the name to its spec, applies component swaps, composes the
module and stamps it with its name, create options and the providing plugin's
provenance (so saving it later needs no registry lookup). ``create`` calls it once,
on the meta device when weights follow.
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from typing import Any

from ..errors import InvalidOverrideError, SpecError
from ..model.compose import ComposedModel, build
from ..model.spec import Component, ModelSpec
from ..plugins.host import PluginHost, default_host

COMPOSE_OPTIONS = ("num_classes", "in_chans", "features_only")
SWAPS = ("block", "stem", "head")


def model_spec(name: str, **options: Any) -> ModelSpec:
    """The spec ``name`` builds with ``options`` (the model's own keyword options)."""
    return spec_from(default_host(), name, options)


def spec_from(host: PluginHost, name: str, options: dict[str, Any]) -> ModelSpec:
    """``model_spec`` against a given plugin host."""
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


def build_model(name: str, **options: Any) -> ComposedModel:
    """The registered model ``name`` with freshly initialised weights (under
    ``model.meta_device()``, with none). ``options`` are ``create``'s, weights aside:
    ``num_classes``, ``in_chans``, ``features_only``, ``block``/``stem``/``head`` swaps,
    and the model's own options."""
    host = default_host()
    entry = host.registry.get("model", name)
    given = {k: options[k] for k in (*COMPOSE_OPTIONS, *SWAPS) if options.get(k) is not None and options[k] is not False}
    own = {k: v for k, v in options.items() if k not in COMPOSE_OPTIONS + SWAPS}
    swaps = {k: given[k] for k in SWAPS if k in given}
    spec = swap_components(spec_from(host, name, own), **swaps, host=host)
    model = build(
        spec,
        lambda kind, n: host.registry.get(kind, n).obj,
        num_classes=given.get("num_classes"),
        in_chans=given.get("in_chans"),
        features_only="features_only" in given,
        swapped=frozenset(swaps),
    )
    model.model_name = name
    model.create_kwargs = {**{k: v for k, v in given.items() if k != "features_only"}, **own}
    if "features_only" in given:
        model.create_kwargs["features_only"] = True
    model.provenance = entry.provenance
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
