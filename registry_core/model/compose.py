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
from .data_config import DataConfig
from .features import FeatureInfo, check_global_pool, take_indices
from .first_conv import find_first_conv
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

    # timm-style read-only views; TorchScript need not compile them
    __jit_unused_properties__ = ["features_only", "num_classes", "num_features", "head_hidden_size", "pretrained_cfg",
                                 "default_cfg"]

    def __init__(
        self,
        stem: Stem,
        stages: list[list[Block]],
        head: Head | None,
        meta: ModelMeta,
        feature_info: list[dict[str, Any]],
        aux_heads: Sequence[tuple[int, Head, float]] = (),
        neck: Block | None = None,
        out_indices: int | Sequence[int] | None = None,
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
        self.stage_info = FeatureInfo(feature_info)  # every stage, whatever out_indices selects
        self.out_indices: list[int] = take_indices(len(stages), out_indices, "out_indices")
        self.feature_info = FeatureInfo(self.stage_info[i] for i in self.out_indices) if head is None else self.stage_info
        self.model_name = ""
        self.create_kwargs: dict[str, Any] = {}
        self.provenance: Any = None  # the registry entry's provenance, stamped when built by name
        # preprocessing and labels belong to a set of weights: a tag or a weights file replaces these
        self.data_config = DataConfig.from_meta(meta)
        self.class_names: Any = None  # list[str] in label order, when the weights name their classes
        self.pretrained_tag = ""
        self.fused = False  # set by fuse(): BatchNorms folded away, so the state dict is no longer the spec's

    @property
    def features_only(self) -> bool:
        return self.head is None

    @property
    def num_classes(self) -> int:
        return 0 if self.head is None else self.head.num_classes

    @property
    def num_features(self) -> int:
        """Channels of ``forward_features``'s map (timm's ``num_features``)."""
        return self.stage_info[-1]["channels"]

    @property
    def head_hidden_size(self) -> int:
        """Width of the pre-logit features, what ``forward_head(x, pre_logits=True)`` gives."""
        return getattr(self.head, "pre_logits_features", self.num_features)

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        """timm's ``pretrained_cfg``: what preprocessing and fine-tuning code reads."""
        meta, data = self.meta, self.data_config
        return {
            "architecture": self.model_name,
            "tag": self.pretrained_tag,
            "input_size": data.input_size,
            "test_input_size": data.test_input_size,
            "min_input_size": meta.min_input_size,
            "mean": data.mean,
            "std": data.std,
            "interpolation": data.interpolation,
            "crop_pct": data.crop_pct,
            "test_crop_pct": data.test_crop_pct,
            "crop_mode": data.crop_mode,
            "num_classes": self.num_classes,
            "first_conv": find_first_conv(self)[0],
            "classifier": "" if self.head is None else f"head.{self.head.classifier_name}",
        }

    @property
    def default_cfg(self) -> dict[str, Any]:
        """timm's older name for ``pretrained_cfg``."""
        return self.pretrained_cfg

    def _neck(self, x: Tensor) -> Tensor:
        if hasattr(self, "neck"):
            return self.neck(x)
        return x

    def forward_features(self, x: Tensor) -> Tensor:
        return self._neck(self.stages(self.stem(x)))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        if self.head is None:
            raise SpecError("this model was built with features_only=True and has no head")
        return self.head(x, pre_logits=pre_logits)

    def _run_stages(self, x: Tensor, take: list[int], stop_early: bool) -> tuple[Tensor, list[Tensor]]:
        """The last map computed and the outputs of the stages in ``take`` (the last
        stage's through the neck); ``stop_early`` skips the stages after ``take``."""
        outputs: list[Tensor] = []
        last = len(self.stages) - 1
        stop = max(take) if stop_early else last
        x = self.stem(x)
        for i, stage in enumerate(self.stages):
            if i <= stop:
                x = stage(x)
                if i == last:
                    x = self._neck(x)
                if i in take:
                    outputs.append(x)
        return x, outputs

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool | None = None,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """timm's ``forward_intermediates``: ``indices`` picks stages (an int: the last n),
        and it returns ``(final features, intermediates)``, or the intermediates alone
        with ``intermediates_only=True``. Called with ``x`` alone it returns every
        stage's output as a list, as it always has. ``norm`` changes nothing: no model
        here has a norm after its stages other than the neck, which always runs."""
        if output_fmt != "NCHW":
            raise InvalidOverrideError("output_fmt", f"only 'NCHW' is supported, got {output_fmt!r}")
        take = take_indices(len(self.stages), indices, "indices")
        final, intermediates = self._run_stages(x, take, stop_early)
        if intermediates_only or (intermediates_only is None and indices is None):
            return intermediates
        return final, intermediates

    def forward(self, x: Tensor) -> Tensor | list[Tensor]:
        if not torch.jit.is_scripting():
            return self._checked_forward(x)  # type: ignore[return-value]
        # TorchScript compiles no try/except and no variable-length tuple: a scripted
        # model returns main logits in training too, and a layer's own error on a small input
        if self.head is None:
            return self._run_stages(x, self.out_indices, True)[1]
        return self.forward_head(self.forward_features(x))

    def _checked_forward(self, x: Tensor) -> Tensor | list[Tensor] | AuxLogits:
        try:
            return self._eager_forward(x)
        except (RuntimeError, ValueError) as exc:
            self._explain_small_input(x, exc)
            raise

    def _eager_forward(self, x: Tensor) -> Tensor | list[Tensor] | AuxLogits:
        if self.head is None:
            return self._run_stages(x, self.out_indices, True)[1]
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

    def fuse(self, channels_last: bool = False) -> ComposedModel:
        """For inference: fold each BatchNorm into the convolution feeding it, in place, and
        return the model; it must be in eval mode and refuses ``train()`` afterwards (see
        ``model/fuse.py``). ``channels_last`` also converts it to that memory format."""
        from .fuse import fuse

        return fuse(self, channels_last)

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A fresh classifier for ``num_classes`` (0: return pooled features); auxiliary
        heads are reset too, so training on the new classes uses them all.
        ``global_pool`` changes the head's pooling as timm's does (``''`` with 0 classes:
        the unpooled map); a head left unpooled goes back to its default pooling when
        given classes again."""
        if self.head is None:
            raise SpecError("this model was built with features_only=True and has no head")
        if global_pool is None and num_classes and self.head.unpooled:
            global_pool = "avg"
        check_global_pool(global_pool, num_classes)
        self.head.reset(num_classes)
        if global_pool is not None:
            self.head.set_global_pool(global_pool)
            self.create_kwargs["global_pool"] = global_pool
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
    take_indices(len(spec.stages), out_indices, "out_indices")
    if not features_only:
        check_global_pool(global_pool, num_classes)

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
        if global_pool is not None:
            head.set_global_pool(global_pool)
    return ComposedModel(stem, stages, head, meta.with_channels(in_chans), feature_info, aux_heads, neck, out_indices)


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
