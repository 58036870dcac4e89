"""``TrainConfig``: every option of a training run, checked once when it is made."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import TrainingError
from .transforms import POLICIES

OPTIMIZERS = {"sgd": (0.05, 5e-4), "adamw": (1e-3, 0.05)}  # default (lr, weight decay)
SCHEDULES = ("cosine", "step", "none")
RESUMABLE = {"epochs", "max_steps", "workers", "checkpoint_every", "log_every", "tensorboard"}


@dataclass
class TrainConfig:
    """Every option of a run; see ``docs/training.md``. ``batch_size`` is the global
    batch per forward pass (split across processes); one optimiser step sees
    ``batch_size * accum_steps`` images."""

    model: str
    dataset: str = "digits"
    out: str | None = None
    data_root: str | None = None
    data_options: dict[str, Any] = field(default_factory=dict)
    model_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float | None = None
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    step_epochs: int = 30
    gamma: float = 0.1
    label_smoothing: float = 0.0
    clip_grad: float | None = None
    accum_steps: int = 1
    seed: int = 0
    image_size: int | None = None
    augment: str | None = None
    mixup: float = 0.0
    cutmix: float = 0.0
    ema: float | None = None
    weights: str | None = None
    pretrained: bool = False
    freeze: str | None = None
    head_lr_mult: float = 1.0
    channels_last: bool = False
    amp: str | None = None
    compile: bool = False
    workers: int | None = None
    checkpoint_every: int = 0
    log_every: int = 50
    tensorboard: bool = False
    device: str | None = None

    def __post_init__(self):
        choices = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "amp": (None, "bf16", "fp16"),
                   "augment": (None, *POLICIES)}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise TrainingError(f"{name} must be one of {', '.join(map(str, allowed))}, got {getattr(self, name)!r}")
        positive = ("epochs", "batch_size", "accum_steps", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise TrainingError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise TrainingError(f"max_steps must be at least 1, got {self.max_steps}")
        if not 0 <= self.label_smoothing < 1:
            raise TrainingError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.mixup < 0 or self.cutmix < 0 or self.head_lr_mult <= 0 or not 0 < (self.ema or 0.5) < 1:
            raise TrainingError("mixup and cutmix must be at least 0, head_lr_mult above 0 and ema in (0, 1)")
        if self.weights and self.pretrained:
            raise TrainingError("give weights (a file) or pretrained (the store's file), not both")

    @property
    def base_lr(self) -> float:
        return OPTIMIZERS[self.optimizer][0] if self.lr is None else self.lr

    @property
    def precision(self) -> str:
        """The arithmetic of the forward pass, in words."""
        return {None: "float32", "bf16": "bfloat16 autocast", "fp16": "float16 autocast with a gradient scaler"}[self.amp]
