"""Building a model spec into a ``ComposedModel``: stem -> stages of blocks -> neck ->
norm -> head (+ auxiliary heads).

The core knows only the interface contract: it asks the registry for each component
class by name, builds it with the documented signature, and checks that what came
back keeps the contract (channels, kind, the format it reads and gives), so a mismatch
is reported at build time with the stage and block that caused it rather than as a
shape error deep in ``forward``.
"""

from __future__ import annotations

import contextlib
import inspect
import numbers
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..errors import InvalidOverrideError, RegistryCoreError, SpecError
from .compose import ComposedModel
from .features import check_global_pool, take_indices
from .init import initialise
from .interfaces import MAPS, TOKENS, Block, FeatureTap, Head, Stem
from .spec import BlockSpec, ModelSpec
from .tokens import Flow, block_flow, check_reads, stem_flow

Resolver = Callable[[str, str], type]


def build(
    spec: ModelSpec,
    resolve: Resolver,
    *,
    num_classes: int | None = None,
    in_chans: int | None = None,
    features_only: bool = False,
    out_indices: int | Sequence[int] | None = None,
    global_pool: str | None = None,
    swapped: frozenset[str] = frozenset(),
) -> ComposedModel:
    """Build ``spec``. ``swapped`` names the component kinds a user override replaced,
    so an option the new component rejects is reported against that parameter.
    ``out_indices`` picks the stages a ``features_only`` model returns; ``global_pool``
    sets the head's pooling (``''`` with ``num_classes=0``: unpooled features)."""
    meta = spec.meta
    in_chans = meta.input_size[0] if in_chans is None else in_chans
    num_classes = meta.num_classes if num_classes is None else num_classes
    for parameter, value in (("in_chans", in_chans), ("num_classes", num_classes)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise InvalidOverrideError(parameter, f"must be an integer, got {value!r}")
    in_chans, num_classes = int(in_chans), int(num_classes)
    if in_chans < 1:
        raise InvalidOverrideError("in_chans", f"must be at least 1, got {in_chans}")
    if num_classes < 0:
        raise InvalidOverrideError("num_classes", f"must be 0 or more, got {num_classes}")
    if out_indices is not None and not features_only:
        raise InvalidOverrideError("out_indices", "selects the maps of a features_only=True model; pass features_only=True too")
    if features_only and out_indices is None:
        out_indices = spec.out_indices
    if not features_only:
        check_global_pool(global_pool, num_classes)

    stem = _construct("stem", spec.stem.name, resolve, (in_chans,), spec.stem.options, "the stem", swapped)
    _expect(isinstance(stem, Stem), f"stem {spec.stem.name!r} did not build a registry_core.Stem")
    with _reported_against("stem", swapped):
        flow = stem_flow(stem, spec.stem.name)
    channels, reduction = stem.out_channels, stem.reduction
    stages, feature_info, stage_flows = [], _tap_info(stem, "stem", 1, -1, -1), []
    for s, stage in enumerate(spec.stages):
        blocks = []
        for b, (name, out, stride, options) in enumerate(stage.expand()):
            where = f"block {b} of stage {s}"
            with _reported_against("block", swapped):
                check_reads(resolve("block", name), "block", name, flow, where)
            block = _construct("block", name, resolve, (channels, out, stride), options, where, swapped)
            _expect(
                isinstance(block, Block) and block.out_channels == out,
                f"{where}: block {name!r} must be a registry_core.Block with out_channels={out}",
            )
            flow = block_flow(block, name, flow, where)
            feature_info += _tap_info(block, f"stages.{s}.{b}", reduction, s, b)
            blocks.append(block)
            channels, reduction = out, reduction * stride
        stages.append(blocks)
        stage_flows.append((channels, flow))
        if stage.level or s == len(spec.stages) - 1:
            feature_info.append({"stage": s, "name": stage.name or f"stages.{s}", "module": f"stages.{s}",
                                 "channels": channels, "reduction": reduction, "format": flow.format,
                                 "prefix_tokens": flow.prefix_tokens})

    neck = norm = None
    if spec.neck is not None:
        neck, flow = _closing_block(spec.neck, "the neck", channels, flow, resolve)
        channels, reduction = spec.neck.out_channels, reduction * spec.neck.stride
        feature_info[-1] = {**feature_info[-1], "module": "neck", "channels": channels, "reduction": reduction,
                            "format": flow.format, "prefix_tokens": flow.prefix_tokens}

    head: Head | None = None
    aux_heads: list[tuple[int, Head, float, str, int]] = []
    if not features_only:
        if spec.norm is not None:
            norm, normed = _closing_block(spec.norm, "the norm", channels, flow, resolve)
            _expect(norm.out_channels == channels and spec.norm.stride == 1 and normed == flow,
                    f"the norm: block {spec.norm.block!r} must keep the {channels} channels, resolution and format it is given")
        head = _construct_head(spec.head.name, spec.head.options, channels, num_classes, flow, resolve, "the head", swapped)
        for aux in spec.aux_heads:
            i = spec.stage_index(aux.after)
            tapped_channels, tapped = stage_flows[i]
            aux_head = _construct_head(aux.name, aux.options, tapped_channels, num_classes, tapped, resolve,
                                       "an auxiliary head", frozenset())
            position = len(aux_heads) if aux.output_position is None else aux.output_position
            aux_heads.append((i, aux_head, aux.loss_weight, aux.output_name, position))
        if global_pool is not None:
            head.set_global_pool(global_pool)
    take_indices(len(feature_info), out_indices, "out_indices")
    return ComposedModel(stem, stages, head, meta.with_channels(in_chans), feature_info, aux_heads, neck, out_indices, norm)


def _tap_info(component: Stem | Block, path: str, reduction: int, stage: int, block: int) -> list[dict[str, Any]]:
    """``feature_info`` entries for the taps ``component`` declares: it sits at ``path``
    (in ``stage``, as its ``block``; -1 for the stem) and is given a map of ``reduction``."""
    taps = component.feature_taps
    _expect(all(isinstance(t, FeatureTap) and t.channels > 0 and t.reduction > 0 for t in taps),
            f"{path}: feature_taps must be FeatureTap(module, channels, reduction) entries with positive numbers")
    return [{"stage": stage, "block": block, "tap": i, "name": f"{path}.{t.module}", "module": f"{path}.{t.module}",
             "channels": t.channels, "reduction": reduction * t.reduction, "format": MAPS, "prefix_tokens": 0}
            for i, t in enumerate(taps)]


@contextlib.contextmanager
def _reported_against(kind: str, swapped: frozenset[str]) -> Iterator[None]:
    """A format mismatch caused by a user's swap of ``kind`` is reported against that parameter."""
    try:
        yield
    except SpecError as exc:
        if kind in swapped:
            raise InvalidOverrideError(kind, str(exc)) from None
        raise


def _closing_block(spec: BlockSpec, where: str, channels: int, flow: Flow, resolve: Resolver) -> tuple[Block, Flow]:
    """The neck or the norm, built after the last stage, and what it gives."""
    assert spec.block is not None  # ModelSpec makes sure
    check_reads(resolve("block", spec.block), "block", spec.block, flow, where)
    block = _construct("block", spec.block, resolve, (channels, spec.out_channels, spec.stride), spec.options, where, frozenset())
    _expect(isinstance(block, Block) and block.out_channels == spec.out_channels,
            f"{where}: block {spec.block!r} must be a registry_core.Block with out_channels={spec.out_channels}")
    return block, block_flow(block, spec.block, flow, where)


def _construct_head(name: str, options: Any, channels: int, num_classes: int, flow: Flow, resolve: Resolver, where: str,
                    swapped: frozenset[str]) -> Head:
    """A head that reads what it is given; a token head also learns how many prefix tokens lead."""
    with _reported_against("head", swapped):
        check_reads(resolve("head", name), "head", name, flow, where)
    if flow.format == TOKENS:
        if "prefix_tokens" in options:
            raise SpecError(f"{where}: head {name!r} is given prefix_tokens by the core (the count its input has); "
                            "drop it from the spec's options")
        options = {**options, "prefix_tokens": flow.prefix_tokens}
    head = _construct("head", name, resolve, (channels, num_classes), options, where, swapped)
    _expect(isinstance(head, Head), f"{'auxiliary ' if where != 'the head' else ''}head {name!r} did not build a registry_core.Head")
    return head


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise SpecError(message)


def _construct(kind, name, resolve, args, options, where, swapped) -> Any:
    cls = resolve(kind, name)
    try:
        inspect.signature(cls).bind(*args, **options)
    except TypeError as exc:
        message = f"{kind} {name!r} cannot be built for {where} with options {dict(options)}: {exc}"
        if kind in swapped:
            raise InvalidOverrideError(kind, message) from None
        raise SpecError(message) from None
    try:
        component = cls(*args, **options)
        initialise(component)
        return component
    except RegistryCoreError:
        raise
    except Exception as exc:  # a component's own bug: say which component, where
        raise SpecError(f"{kind} {name!r} raised {type(exc).__name__} while being built for {where}: {exc}") from exc
