"""The module every registered model is: ``ComposedModel``, stem -> stages of blocks ->
head (+ aux heads), with timm's model API over it; ``assemble.build`` makes one from a
spec. Also ``meta_device()``, for building modules without allocating or initialising.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from ..arguments import check_number
from ..errors import InputSizeError, InvalidOverrideError, SpecError
from .data_config import DataConfig
from .features import FeatureInfo, check_global_pool, take_indices
from .first_conv import find_first_conv
from .interfaces import MAPS, TOKENS, Block, Head, Stem
from .outputs import AuxLogits as AuxLogits  # their home: outputs.py
from .outputs import classification_loss as classification_loss
from .outputs import main_logits as main_logits
from .spec import ModelMeta
from .tokens import check_output_fmt, map_to_tokens, tokens_to_map


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
        aux_heads: Sequence[tuple[int, Head, float, str, int]] = (),
        neck: Block | None = None,
        out_indices: int | Sequence[int] | None = None,
        norm: Block | None = None,
    ):
        super().__init__()
        self.stem = stem
        self.stages = nn.Sequential(*(nn.Sequential(*blocks) for blocks in stages))
        if neck is not None:  # registered only when there is one: other models keep their layout
            self.neck = neck
        if norm is not None:
            self.norm = norm
        self.head = head
        self.aux_heads = nn.ModuleList(aux[1] for aux in aux_heads)
        self.aux_taps = tuple(aux[0] for aux in aux_heads)
        self.aux_loss_weights = tuple(aux[2] for aux in aux_heads)
        self.aux_output_names = tuple(aux[3] for aux in aux_heads)  # the attribute each gets on AuxLogits
        self.aux_output_order = tuple(sorted(range(len(aux_heads)), key=lambda k: aux_heads[k][4]))
        self.meta = meta
        self.stage_info = FeatureInfo(feature_info)  # every feature level, whatever out_indices selects
        # each level's place and format, as plain lists TorchScript compiles: where it is taken (stage, -1 for
        # the stem; block and tap, -1 for a stage's output), and whether tokens become maps where timm's API wants maps
        self.level_stage = [int(info["stage"]) for info in feature_info]
        self.level_block = [int(info.get("block", -1)) for info in feature_info]
        self.level_tap = [int(info.get("tap", -1)) for info in feature_info]
        self.level_tokens = [info.get("format", MAPS) == TOKENS for info in feature_info]
        self.level_prefix_tokens = [int(info.get("prefix_tokens", 0)) for info in feature_info]
        self.level_reduction = [int(info["reduction"]) for info in feature_info]
        self.stem_taps = any(s < 0 for s in self.level_stage)
        self.stage_taps = [any(s == i and b >= 0 for s, b in zip(self.level_stage, self.level_block))
                           for i in range(len(stages))]
        self.out_indices: list[int] = take_indices(len(feature_info), out_indices, "out_indices")
        self.feature_info = FeatureInfo(self.stage_info[i] for i in self.out_indices) if head is None else self.stage_info
        self.model_name = ""
        self.create_kwargs: dict[str, Any] = {}
        self.provenance: Any = None  # the registry entry's provenance, stamped when built by name
        # preprocessing and labels belong to a set of weights: a tag or a weights file replaces these
        self.data_config = DataConfig.from_meta(meta)
        self.class_names: Any = None  # list[str] in label order, when the weights name their classes
        self.pretrained_tag = ""
        self.pretrained_source = dict[str, str]()  # the tag's license, hf_hub_id, url (pretrained_cfg shows them)
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
            **{key: self.pretrained_source.get(key, "") for key in ("license", "hf_hub_id", "url")},
            "input_size": data.input_size,
            "test_input_size": data.test_input_size,
            "min_input_size": meta.min_input_size,
            "mean": data.mean,
            "std": data.std,
            "interpolation": data.interpolation,
            "crop_pct": data.crop_pct,
            "test_crop_pct": data.test_crop_pct,
            "crop_mode": data.crop_mode,
            "fixed_input_size": meta.fixed_input_size,
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

    def _norm(self, x: Tensor) -> Tensor:
        if hasattr(self, "norm"):
            return self.norm(x)
        return x

    def forward_features(self, x: Tensor) -> Tensor:
        return self._norm(self._neck(self.stages(self.stem(x))))

    def get_classifier(self) -> nn.Module:
        """timm's ``get_classifier``: the head's final classifier (``nn.Identity`` with 0 classes)."""
        if self.head is None:
            raise SpecError("this model was built with features_only=True and has no head")
        return getattr(self.head, self.head.classifier_name)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        if self.head is None:
            raise SpecError("this model was built with features_only=True and has no head")
        return self.head(x, pre_logits=pre_logits)

    def _run_levels(self, x: Tensor, take: list[int], stop_early: bool) -> tuple[Tensor, list[Tensor]]:
        """The last map computed and the feature levels in ``take`` (the last stage's
        output through the neck); ``stop_early`` skips the stages after ``take``'s last."""
        outputs: list[Tensor] = []
        last = len(self.stages) - 1
        stop = self.level_stage[max(take)] if stop_early else last
        if self.stem_taps:
            x, taps = self.stem.forward_taps(x)
            for k in take:
                if self.level_stage[k] < 0:
                    outputs.append(taps[self.level_tap[k]])
        else:
            x = self.stem(x)
        for i, stage in enumerate(self.stages):
            if i <= stop:
                if self.stage_taps[i]:
                    for b, block in enumerate(stage):  # type: ignore
                        x, taps = block.forward_taps(x)
                        for k in take:
                            if self.level_stage[k] == i and self.level_block[k] == b:
                                outputs.append(taps[self.level_tap[k]])
                else:
                    x = stage(x)
                if i == last:
                    x = self._neck(x)
                for k in take:
                    if self.level_stage[k] == i and self.level_block[k] < 0:
                        outputs.append(x)
        return x, outputs

    def as_maps(self, outputs: list[Tensor], levels: list[int], height: int, width: int) -> list[Tensor]:
        """The outputs of feature ``levels`` (as the modules give them: what a forward hook
        or torchvision's ``create_feature_extractor`` sees) as maps, for an image of
        ``height x width``: a token stage's patch tokens laid on their grid, its prefix
        tokens dropped; a map as it is."""
        maps: list[Tensor] = []
        for x, i in zip(outputs, levels):
            if self.level_tokens[i]:
                x = tokens_to_map(x, self.level_prefix_tokens[i], self.level_reduction[i], height, width)
            maps.append(x)
        return maps

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
        return_prefix_tokens: bool = False,
    ) -> list[Any] | tuple[Tensor, list[Any]]:
        """timm's ``forward_intermediates``: ``indices`` picks feature levels, numbered as
        ``feature_info`` is (an int: the last n; None: all), and it returns ``(final
        features, intermediates)``, or the intermediates alone with ``intermediates_only=True``.

        Intermediates are ``'NCHW'`` maps (a token stage's patch tokens on their grid,
        prefix tokens dropped) or, with ``output_fmt='NLC'``, ``N x L x C`` patch
        tokens (a map stage's positions row by row). ``return_prefix_tokens`` makes each
        intermediate of a stage with prefix tokens a ``(patches, prefix tokens)`` pair.
        ``norm`` applies the model's final norm (a spec's ``norm``) to each
        intermediate, as timm does; the final features always end with it when the
        last stage ran."""
        check_output_fmt(output_fmt)
        take = take_indices(len(self.stage_info), indices, "indices")
        final, outputs = self._run_levels(x, take, stop_early)
        height, width = x.shape[-2], x.shape[-1]
        intermediates = [self._intermediate(y, i, norm, output_fmt, return_prefix_tokens, height, width)
                         for y, i in zip(outputs, take)]
        if intermediates_only:
            return intermediates
        if not stop_early or self.level_stage[max(take)] == len(self.stages) - 1:
            final = self._norm(final)
        return final, intermediates

    def _intermediate(self, x: Tensor, i: int, norm: bool, output_fmt: str, return_prefix_tokens: bool,
                      height: int, width: int) -> Any:
        if norm and hasattr(self, "norm"):
            info = self.stage_info[i]
            if (self.norm.in_channels, self.norm.input_format) != (info["channels"], info.get("format", MAPS)):
                raise InvalidOverrideError("norm", f"the final norm reads {self.norm.in_channels}-channel "
                                           f"{self.norm.input_format} input; level {i} gives {info['channels']} "
                                           f"channels in {info.get('format', MAPS)}")
            x = self.norm(x)
        if not self.level_tokens[i]:
            return x if output_fmt == MAPS else map_to_tokens(x)
        prefix = self.level_prefix_tokens[i]
        patches = x[:, prefix:] if output_fmt == TOKENS else self.as_maps([x], [i], height, width)[0]
        return (patches, x[:, :prefix]) if return_prefix_tokens and prefix else patches

    def forward(self, x: Tensor) -> Tensor | list[Tensor]:
        if not torch.jit.is_scripting():
            return self._checked_forward(x)  # type: ignore[return-value]
        # TorchScript compiles no try/except and no variable-length tuple: a scripted
        # model returns main logits in training too, and a layer's own error on a small input
        if self.head is None:
            return self.as_maps(self._run_levels(x, self.out_indices, True)[1], self.out_indices, x.shape[-2], x.shape[-1])
        return self.forward_head(self.forward_features(x))

    def _checked_forward(self, x: Tensor) -> Tensor | list[Tensor] | AuxLogits:
        try:
            return self._eager_forward(x)
        except (RuntimeError, ValueError) as exc:
            self._explain_input_size(x, exc)
            raise

    def _eager_forward(self, x: Tensor) -> Tensor | list[Tensor] | AuxLogits:
        if self.head is None:
            return self.as_maps(self._run_levels(x, self.out_indices, True)[1], self.out_indices, x.shape[-2], x.shape[-1])
        if self.training and len(self.aux_heads):
            aux: list[Tensor] = []
            x = self.stem(x)
            for i, stage in enumerate(self.stages):
                x = stage(x)
                aux.extend(head(x) for tap, head in zip(self.aux_taps, self.aux_heads) if tap == i)
            return AuxLogits(self.head(self._norm(self._neck(x))), aux, self.aux_loss_weights, self.aux_output_names,
                             self.aux_output_order)
        return self.forward_head(self.forward_features(x))

    def _explain_input_size(self, x: Tensor, exc: Exception) -> None:
        """A layer that failed on an image below ``meta.min_input_size``, or of another size
        than a fixed-size model's, becomes our error saying so; an input that works is
        never refused."""
        height, width = self.meta.min_input_size[1:]
        if self.meta.fixed_input_size and x.dim() == 4 and tuple(x.shape[-2:]) != (height, width):
            raise InputSizeError(f"{self.model_name or 'this model'} takes images of exactly {height}x{width} pixels "
                                 f"(its fixed input size), got {x.shape[-2]}x{x.shape[-1]}") from exc
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
        num_classes = check_number(num_classes, "num_classes", minimum=0, integer=True)
        if global_pool is None and num_classes and self.head.unpooled:
            global_pool = self.head.default_pool
        check_global_pool(global_pool, num_classes)
        self.head.reset(num_classes)
        if global_pool is not None:
            self.head.set_global_pool(global_pool)
            self.create_kwargs["global_pool"] = global_pool
        for aux_head in self.aux_heads:
            aux_head.reset(num_classes)  # type: ignore[operator]
        self.create_kwargs["num_classes"] = num_classes


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
        if name == "empty_like" and args and isinstance(args[0], Tensor) and args[0].is_meta:
            return self._empty_like(args[0], **(kwargs or {}))
        return func(*args, **(kwargs or {}))

    @staticmethod
    def _empty_like(tensor: Tensor, *, dtype=None, device=None, requires_grad=False, **_layout) -> Tensor:
        """``empty_like`` of a meta tensor (what ``skip_init``/``to_empty`` call): its meta
        kernel lives in Python and pulls in torch's reference-op modules (about a second
        on the first model built), while ``empty_strided`` is native."""
        device = torch.device("meta") if device is None else torch.device(device)
        if device.type != "meta":
            return torch.empty_like(tensor, dtype=dtype, device=device, requires_grad=requires_grad)
        return torch.empty_strided(tensor.shape, tensor.stride(), dtype=dtype or tensor.dtype, device=device,
                                   requires_grad=requires_grad)
