"""A model spec -> an ``nn.Module``: stem -> stages of blocks -> head (+ aux heads).

The core knows only the interface contract: it asks the registry for each component
class by name, builds it with the documented signature, and checks that what came
back keeps the contract (channels, kind), so a mismatch is reported at build time with
the stage and block that caused it rather than as a shape error deep in ``forward``.
"""

from __future__ import annotations

import contextlib
import inspect
import numbers
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from ..errors import InputSizeError, InvalidOverrideError, RegistryCoreError, SpecError
from .init import initialise
from .interfaces import Block, Head, Stem
from .spec import ModelMeta, ModelSpec

Resolver = Callable[[str, str], type]


class AuxLogits(NamedTuple):
    """What a model with auxiliary heads returns in training mode.

    ``logits`` are the main classifier's, ``aux`` the auxiliary classifiers' (in spec
    order), ``weights`` the factor each auxiliary loss gets (GoogLeNet 0.3, Inception
    v3 0.4). In eval mode such a model returns plain logits.
    """

    logits: Tensor
    aux: tuple[Tensor, ...]
    weights: tuple[float, ...]


def classification_loss(output: Tensor | AuxLogits, target: Tensor, criterion=F.cross_entropy) -> Tensor:
    """The training loss for any model's output, adding weighted auxiliary losses."""
    if isinstance(output, AuxLogits):
        loss = criterion(output.logits, target)
        for weight, aux in zip(output.weights, output.aux):
            loss = loss + weight * criterion(aux, target)
        return loss
    return criterion(output, target)


def main_logits(output: Tensor | AuxLogits) -> Tensor:
    return output.logits if isinstance(output, AuxLogits) else output


class ComposedModel(nn.Module):
    """Every registered model is one of these; see ``docs/interfaces.md``."""

    def __init__(
        self,
        stem: Stem,
        stages: list[list[Block]],
        head: Head | None,
        meta: ModelMeta,
        feature_info: list[dict[str, Any]],
        aux_heads: Sequence[tuple[int, Head, float]] = (),
        neck: Block | None = None,
    ):
        super().__init__()
        self.stem = stem
        self.stages = nn.Sequential(*(nn.Sequential(*blocks) for blocks in stages))
        if neck is not None:  # registered only when there is one: other models keep their layout
            self.neck = neck
        self.head = head
        self.aux_heads = nn.ModuleList(h for _, h, _ in aux_heads)
        self.aux_taps = tuple(i for i, _, _ in aux_heads)
        self.aux_loss_weights = tuple(w for _, _, w in aux_heads)
        self.meta = meta
        self.feature_info = feature_info
        self.model_name = ""
        self.create_kwargs: dict[str, Any] = {}
        self.provenance: Any = None  # the registry entry's provenance, stamped when built by name

    @property
    def features_only(self) -> bool:
        return self.head is None

    @property
    def num_classes(self) -> int:
        return 0 if self.head is None else self.head.num_classes

    @property
    def num_features(self) -> int:
        return self.feature_info[-1]["channels"]

    def _neck(self, x: Tensor) -> Tensor:
        neck = getattr(self, "neck", None)
        return x if neck is None else neck(x)

    def forward_features(self, x: Tensor) -> Tensor:
        return self._neck(self.stages(self.stem(x)))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        if self.head is None:
            raise SpecError("this model was built with features_only=True and has no head")
        return self.head(x, pre_logits=pre_logits)

    def forward_intermediates(self, x: Tensor) -> list[Tensor]:
        """Each stage's output, in order, the last one through the neck (what
        ``features_only=True`` returns)."""
        outputs = []
        x = self.stem(x)
        for i, stage in enumerate(self.stages):
            x = stage(x)
            outputs.append(self._neck(x) if i == len(self.stages) - 1 else x)
        return outputs

    def forward(self, x: Tensor) -> Tensor | list[Tensor] | AuxLogits:
        try:
            return self._forward(x)
        except (RuntimeError, ValueError) as exc:
            self._explain_small_input(x, exc)
            raise

    def _forward(self, x: Tensor) -> Tensor | list[Tensor] | AuxLogits:
        if self.head is None:
            return self.forward_intermediates(x)
        if self.training and len(self.aux_heads):
            aux: list[Tensor] = []
            x = self.stem(x)
            for i, stage in enumerate(self.stages):
                x = stage(x)
                aux.extend(head(x) for tap, head in zip(self.aux_taps, self.aux_heads) if tap == i)
            return AuxLogits(self.head(self._neck(x)), tuple(aux), self.aux_loss_weights)
        return self.forward_head(self.forward_features(x))

    def _explain_small_input(self, x: Tensor, exc: Exception) -> None:
        """A layer that failed on an image below ``meta.min_input_size`` becomes our
        error saying so; an input that works is never refused."""
        height, width = self.meta.min_input_size[1:]
        if x.dim() == 4 and (x.shape[-2] < height or x.shape[-1] < width):
            raise InputSizeError(f"{self.model_name or 'this model'} takes images of at least {height}x{width} pixels "
                                 f"(its min_input_size), got {x.shape[-2]}x{x.shape[-1]}") from exc

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh classifier for ``num_classes`` (0: return pooled features); auxiliary
        heads are reset too, so training on the new classes uses them all."""
        if self.head is None:
            raise SpecError("this model was built with features_only=True and has no head")
        self.head.reset(num_classes)
        for aux_head in self.aux_heads:
            aux_head.reset(num_classes)  # type: ignore[operator]
        self.create_kwargs["num_classes"] = num_classes


def build(
    spec: ModelSpec,
    resolve: Resolver,
    *,
    num_classes: int | None = None,
    in_chans: int | None = None,
    features_only: bool = False,
    swapped: frozenset[str] = frozenset(),
) -> ComposedModel:
    """Build ``spec``. ``swapped`` names the component kinds a user override replaced,
    so an option the new component rejects is reported against that parameter."""
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

    stem = _construct("stem", spec.stem.name, resolve, (in_chans,), spec.stem.options, "the stem", swapped)
    _expect(isinstance(stem, Stem), f"stem {spec.stem.name!r} did not build a registry_core.Stem")
    channels, reduction = stem.out_channels, stem.reduction
    stages, feature_info, stage_channels = [], [], []
    for s, stage in enumerate(spec.stages):
        blocks = []
        for b, (name, out, stride, options) in enumerate(stage.expand()):
            where = f"block {b} of stage {s}"
            block = _construct("block", name, resolve, (channels, out, stride), options, where, swapped)
            _expect(
                isinstance(block, Block) and block.out_channels == out,
                f"{where}: block {name!r} must be a registry_core.Block with out_channels={out}",
            )
            blocks.append(block)
            channels, reduction = out, reduction * stride
        stages.append(blocks)
        stage_channels.append(channels)
        feature_info.append(
            {"stage": s, "name": stage.name or f"stages.{s}", "module": f"stages.{s}", "channels": channels, "reduction": reduction}
        )

    neck = None
    if spec.neck is not None:
        n = spec.neck
        neck = _construct("block", n.block, resolve, (channels, n.out_channels, n.stride), n.options, "the neck", frozenset())
        _expect(isinstance(neck, Block) and neck.out_channels == n.out_channels,
                f"the neck: block {n.block!r} must be a registry_core.Block with out_channels={n.out_channels}")
        channels, reduction = n.out_channels, reduction * n.stride
        feature_info[-1] = {**feature_info[-1], "module": "neck", "channels": channels, "reduction": reduction}

    head, aux_heads = None, []
    if not features_only:
        head = _construct("head", spec.head.name, resolve, (channels, num_classes), spec.head.options, "the head", swapped)
        _expect(isinstance(head, Head), f"head {spec.head.name!r} did not build a registry_core.Head")
        for aux in spec.aux_heads:
            i = spec.stage_index(aux.after)
            aux_head = _construct("head", aux.name, resolve, (stage_channels[i], num_classes), aux.options, "an auxiliary head", frozenset())
            _expect(isinstance(aux_head, Head), f"auxiliary head {aux.name!r} did not build a registry_core.Head")
            aux_heads.append((i, aux_head, aux.loss_weight))
    return ComposedModel(stem, stages, head, meta.with_channels(in_chans), feature_info, aux_heads, neck)


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


@contextlib.contextmanager
def meta_device() -> Iterator[None]:
    """Build modules on the meta device without running their initialisers."""
    with torch.device("meta"), _SkipInitOnMeta():
        yield


class _SkipInitOnMeta(TorchFunctionMode):
    """Initialising a meta tensor does nothing, yet costs a Python-level op
    decomposition per call (most of a meta build's time): skip ``torch.nn.init``'s
    in-place functions and the usual in-place fill ops when they target a meta tensor."""

    FILL_OPS = frozenset({"normal_", "uniform_", "fill_", "zero_", "copy_", "erfinv_", "mul_", "add_", "clamp_",
                          "div_", "sub_", "random_", "bernoulli_", "exponential_", "log_normal_"})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        is_init = name in self.FILL_OPS or (getattr(func, "__module__", "") == "torch.nn.init" and name.endswith("_"))
        if is_init and args and isinstance(args[0], Tensor) and args[0].is_meta:
            return args[0]
        return func(*args, **(kwargs or {}))
