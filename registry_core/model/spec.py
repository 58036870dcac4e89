"""Model specs: what a plugin hands the core so the core can build a model.

A spec is plain data (names of registered components plus their options), so the core
can swap a stage's block, change the number of classes, or record how a model was
built in a weights file without knowing the architecture.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import SpecError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Component:
    """A registered stem or head, by name, with the options to build it."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BlockSpec:
    """One block of an irregular stage; ``block=None`` uses the stage's block."""

    out_channels: int
    stride: int = 1
    options: Mapping[str, Any] = field(default_factory=dict)
    block: str | None = None


@dataclass(frozen=True)
class StageSpec:
    """A run of blocks. Regular stages give ``depth``/``out_channels``/``stride`` (the
    stride goes to the first block); irregular ones list ``blocks`` explicitly.
    ``level=False``: the stage's output is no feature level (timm counts only a tap
    inside it, as VGG's map before each pool); the last stage's output always is."""

    block: str
    depth: int = 1
    out_channels: int = 0
    stride: int = 1
    options: Mapping[str, Any] = field(default_factory=dict)
    blocks: tuple[BlockSpec, ...] = ()
    name: str | None = None
    level: bool = True

    def expand(self) -> list[tuple[str, int, int, dict[str, Any]]]:
        """Per-block ``(block name, out_channels, stride, options)``."""
        if self.blocks:
            return [
                (b.block or self.block, b.out_channels, b.stride, {**self.options, **b.options})
                for b in self.blocks
            ]
        if self.depth < 1 or self.out_channels < 1:
            raise SpecError(f"stage {self.name or self.block!r} needs depth >= 1 and out_channels >= 1")
        return [
            (self.block, self.out_channels, self.stride if i == 0 else 1, dict(self.options))
            for i in range(self.depth)
        ]

    def block_names(self) -> set[str]:
        return {name for name, *_ in self.expand()}


@dataclass(frozen=True)
class AuxHeadSpec:
    """An auxiliary classifier tapped after a stage (index or name), used in training
    with ``loss_weight`` times its cross-entropy added to the main loss.

    In training the model returns ``AuxLogits``, the tuple ``(logits, *aux outputs)``:
    ``output_name`` is the attribute this head's output gets on it (``aux_logits``, as
    torchvision's), ``output_position`` its place among the aux outputs (default: spec
    order)."""

    name: str
    after: int | str
    loss_weight: float
    options: Mapping[str, Any] = field(default_factory=dict)
    output_name: str = ""
    output_position: int | None = None


@dataclass(frozen=True)
class ModelMeta:
    """What a user needs to feed the model and cite it."""

    family: str = ""
    num_classes: int = 1000
    input_size: tuple[int, int, int] = (3, 224, 224)
    min_input_size: tuple[int, int, int] = (3, 32, 32)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    interpolation: str = "bilinear"
    crop_pct: float = 0.875
    description: str = ""
    paper: str = ""
    # the module path of the convolution that takes the image (e.g. "stem.conv"); empty:
    # the first Conv2d a forward pass calls, which is right unless the stem runs a side branch first
    first_conv: str = ""
    # True when the model takes input_size only (timm's fixed_input_size: a ViT's position
    # embedding is one per patch of that size); min_input_size must then equal input_size
    fixed_input_size: bool = False

    def __post_init__(self):
        if self.fixed_input_size and tuple(self.min_input_size) != tuple(self.input_size):
            raise SpecError(f"a model with fixed_input_size takes input_size {tuple(self.input_size)} only: "
                            f"min_input_size must equal it, got {tuple(self.min_input_size)}")

    def with_channels(self, in_chans: int) -> ModelMeta:
        """Metadata for ``in_chans`` input channels (mean/std averaged or repeated)."""
        if in_chans == self.input_size[0]:
            return self
        mean, std = fit_channels(self.mean, in_chans), fit_channels(self.std, in_chans)
        return replace(
            self,
            input_size=(in_chans, *self.input_size[1:]),
            min_input_size=(in_chans, *self.min_input_size[1:]),
            mean=mean,
            std=std,
        )


def fit_channels(values: tuple[float, ...], n: int) -> tuple[float, ...]:
    if n == 1:
        return (sum(values) / len(values),)
    return tuple(values[i % len(values)] for i in range(n))


@dataclass(frozen=True)
class ModelSpec:
    """stem -> stages -> neck -> norm -> head (+ auxiliary heads), and the model's metadata.

    The optional ``neck`` is one registered block (``BlockSpec`` naming its block) run
    after the last stage and before the head: DenseNet's final norm + ReLU, MobileNet's
    last 1x1 convolution. ``create(..., block=...)`` swaps stage blocks, never the neck.

    The optional ``norm`` is one registered block that only normalises what the stages
    (and neck) give, timm's ``norm``: a ViT's final LayerNorm. ``forward_features`` ends
    with it, but, as in timm, the intermediates leave it out unless
    ``forward_intermediates(norm=True)`` asks, and a ``features_only`` model has none.
    """

    stem: Component
    stages: tuple[StageSpec, ...]
    head: Component
    meta: ModelMeta = field(default_factory=ModelMeta)
    aux_heads: tuple[AuxHeadSpec, ...] = ()
    neck: BlockSpec | None = None
    norm: BlockSpec | None = None
    # the levels a features_only model returns when create() names none (timm's feature_cfg
    # out_indices: a ViT's last three blocks); None: every level
    out_indices: int | tuple[int, ...] | None = None

    def __post_init__(self):
        if not self.stages:
            raise SpecError("a model spec needs at least one stage")
        object.__setattr__(self, "stages", tuple(self.stages))
        object.__setattr__(self, "aux_heads", tuple(self.aux_heads))
        if not self.stages[-1].level:
            raise SpecError("the last stage's output is the model's features: it must stay a feature level (level=True)")
        for aux in self.aux_heads:
            self.stage_index(aux.after)
        _check_aux_outputs(self.aux_heads)
        for part, spec in (("neck", self.neck), ("norm", self.norm)):
            if spec is not None and not spec.block:
                raise SpecError(f"a {part} must name its registered block: BlockSpec(out_channels, block='...')")

    def stage_index(self, ref: int | str) -> int:
        """Resolve a stage given by index or name."""
        if isinstance(ref, int):
            if not 0 <= ref < len(self.stages):
                raise SpecError(f"stage index {ref} out of range (the model has {len(self.stages)} stages)")
            return ref
        for i, stage in enumerate(self.stages):
            if stage.name == ref:
                return i
        raise SpecError(f"no stage named {ref!r}")


def _check_aux_outputs(aux_heads: tuple[AuxHeadSpec, ...]) -> None:
    """Output names are distinct identifiers none of ``AuxLogits``' own; positions a permutation."""
    from .outputs import RESERVED

    names = [aux.output_name for aux in aux_heads if aux.output_name]
    for name in names:
        if not name.isidentifier() or name in RESERVED or name.startswith("_"):
            raise SpecError(f"aux head output_name {name!r} must be an identifier other than {', '.join(sorted(RESERVED))}")
    if len(set(names)) != len(names):
        raise SpecError(f"aux head output names must differ, got {names}")
    positions = [aux.output_position for aux in aux_heads]
    if any(p is not None for p in positions) and sorted(p if p is not None else -1 for p in positions) != list(range(len(positions))):
        raise SpecError(f"aux head output_position values must number 0 to {len(positions) - 1} once each, got {positions}")
