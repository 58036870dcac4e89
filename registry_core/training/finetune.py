"""Starting from weights: frozen parts, a faster head, and an average of the weights.

These are the pieces of the transfer-learning recipe in ``docs/training.md``; the
trainer wires them in, each is usable alone.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ..errors import TrainingError, WeightsError
from ..factory.create import create
from ..model.compose import ComposedModel
from ..weights.metadata import class_names
from ..weights.safetensors_io import read_metadata

HEADS = ("head", "aux_heads")  # what ``backbone`` leaves out, and what ``head_lr_mult`` speeds up


def model_for(name: str, classes: list[str], channels: int, *, weights: str | None = None, pretrained: bool = False,
              options: dict[str, Any] | None = None, recorded: dict[str, Any] | None = None) -> ComposedModel:
    """The model for a dataset: from scratch, from the options a run recorded (resuming:
    the state holds the weights), or from weights with a new head, unless the file was
    trained on these very classes (by name, in order)."""
    if recorded is not None:
        return create(name, **recorded)
    model = create(name, weights=weights, pretrained=pretrained, num_classes=len(classes), in_chans=channels,
                   **(options or {}))
    if weights or pretrained:
        try:
            same = weights is not None and class_names(read_metadata(weights), weights) == classes
        except WeightsError:
            same = False
        if not same:
            model.reset_classifier(len(classes))
    return model


def is_head(name: str) -> bool:
    return name.split(".", 1)[0] in HEADS


def frozen_modules(model: nn.Module, spec: str | None) -> list[str]:
    """The module names ``spec`` freezes: comma-separated module paths (``stem,stages.0``)
    or ``backbone`` (every top-level part but the heads)."""
    if not spec:
        return []
    modules = dict(model.named_modules())
    names: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if part == "backbone":
            names += [n for n, _ in model.named_children() if not is_head(n)]
        elif part in modules and part:
            names.append(part)
        else:
            top = ", ".join(n for n, _ in model.named_children())
            raise TrainingError(f"--freeze: the model has no part {part!r}; name module paths such as {top} "
                                "(or stages.0), or 'backbone'")
    return names


def freeze(model: nn.Module, names: list[str]) -> None:
    """No gradients for these modules' parameters; ``hold_frozen`` keeps their statistics."""
    for name in names:
        model.get_submodule(name).requires_grad_(False)


def hold_frozen(model: nn.Module, names: list[str]) -> None:
    """Frozen parts run in eval mode while the rest trains, so BatchNorm statistics (and
    dropout) inside them stay fixed: a frozen part computes the same function throughout."""
    for name in names:
        model.get_submodule(name).eval()


def parameter_groups(model: nn.Module, decay: float, head_lr_mult: float) -> list[dict]:
    """Trainable parameters in groups: weight decay on weights only (not on biases and
    normalisation scales), and the heads' learning rate times ``head_lr_mult``."""
    groups = []
    for head in (False, True):
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad and is_head(n) == head]
        mult = head_lr_mult if head else 1.0
        groups.append({"params": [p for _, p in params if p.ndim > 1], "weight_decay": decay, "lr_mult": mult})
        groups.append({"params": [p for _, p in params if p.ndim <= 1], "weight_decay": 0.0, "lr_mult": mult})
    return [g for g in groups if g["params"]]


class WeightsEma:
    """An exponential moving average of a model's weights and buffers, as timm's
    ``ModelEmaV3``: after each optimiser step ``ema = decay * ema + (1 - decay) * weights``
    for floating-point tensors; integer buffers (BatchNorm's step count) are copied."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise TrainingError(f"ema decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.module: Any = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for average, current in zip(self.module.state_dict().values(), model.state_dict().values()):
            if average.is_floating_point():
                average.lerp_(current, 1.0 - self.decay)
            else:
                average.copy_(current)
