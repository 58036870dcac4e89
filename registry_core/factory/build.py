"""Building a registered model from its name and options: no files, no weights.

``build_model`` resolves the name to its spec, applies component swaps, composes the
module and stamps it with its name, create options and the providing plugin's
provenance (so saving it later needs no registry lookup). ``create`` calls it once,
on the meta device when weights follow.
"""

from __future__ import annotations

import inspect
import numbers
from dataclasses import replace
from typing import Any

from ..errors import BrokenPluginError, InvalidOverrideError, RegistryCoreError, SpecError
from ..model.assemble import build
from ..model.compose import ComposedModel
from ..model.spec import Component, ModelSpec
from ..plugins.host import PluginHost, default_host
from ..weights.validate import check_create_options, check_name

COMPOSE_OPTIONS = ("num_classes", "in_chans", "features_only", "out_indices", "global_pool")
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
        _check_like_default(name, option, options[option], accepted[option])
    try:
        spec = factory(**options)
    except RegistryCoreError:
        raise
    except Exception as exc:  # a bug in the plugin's builder, or an option value it cannot take
        if options:
            raise InvalidOverrideError(", ".join(options), f"model {name!r} failed to build with options {options}: "
                                       f"{type(exc).__name__}: {exc}") from exc
        host.entry_failed("model", name, exc)
        raise BrokenPluginError(name, (), f"its builder raised {type(exc).__name__}: {exc}") from None
    if not isinstance(spec, ModelSpec):
        raise SpecError(f"model {name!r}: its builder returned {type(spec).__name__}, not a ModelSpec")
    return spec


def _keyword_options(fn) -> dict[str, Any]:
    """The builder's keyword options and their defaults."""
    params = inspect.signature(fn).parameters.values()
    return {p.name: p.default for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def _check_like_default(name: str, option: str, value: Any, default: Any) -> None:
    """A value of another kind than a plain default (``drop_rate=0.2`` given ``'abc'``,
    as ``--model-opt`` passes text it cannot parse) is refused here, in the option's
    name, rather than failing later inside some layer."""
    if isinstance(default, bool) and not isinstance(value, bool):
        raise InvalidOverrideError(option, f"model {name!r} takes true or false (default {default}), got {value!r}")
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if isinstance(default, numbers.Real) and not isinstance(default, bool) and not number:
        raise InvalidOverrideError(option, f"model {name!r} takes a number (default {default}), got {value!r}")


def build_model(name: str, **options: Any) -> ComposedModel:
    """The registered model ``name`` with freshly initialised weights (under
    ``model.meta_device()``, with none). ``options`` are ``create``'s, weights aside:
    ``num_classes``, ``in_chans``, ``features_only`` (with timm's ``out_indices``),
    timm's ``global_pool``, ``block``/``stem``/``head`` swaps,
    and the model's own options."""
    check_name(name, "the model asked for")
    check_create_options(options)
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
        out_indices=given.get("out_indices"),
        global_pool=given.get("global_pool"),
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
        if new is not None and not isinstance(new, str):
            raise InvalidOverrideError(kind, f"must be the name of a registered {kind} (a str), got {new!r}; register "
                                       f"a {kind} with other options under a name of its own and pass that name")
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
