"""``TrainConfig``: every option of a training run, checked once when it is made.

The one validation of a run's options: ``fit(...)``, ``TrainConfig(...)``, the command
line and a resumed run's saved configuration all pass through ``__post_init__``. It
imports no torch, so the command line refuses a bad option at once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..arguments import check_number, check_path
from ..errors import InvalidOverrideError, TrainingError
from ..weights.validate import MAX_IMAGE_SIZE, check_create_options

OPTIMIZERS = {"sgd": (0.05, 5e-4), "adamw": (1e-3, 0.05)}  # default (lr, weight decay)
SCHEDULES = ("cosine", "step", "none")
POLICIES = ("none", "crop-flip", "imagenet", "trivialaugment", "randaugment")  # training augmentation
MAX_STEPS = 10**12
# Each numeric option: its bounds for arguments.check_number; None is allowed where the default is None.
NUMBERS: dict[str, dict[str, Any]] = {
    "epochs": {"integer": True, "minimum": 1, "maximum": 10**6},
    "max_steps": {"integer": True, "minimum": 1, "maximum": MAX_STEPS},
    "batch_size": {"integer": True, "minimum": 1, "maximum": 10**6},
    "accum_steps": {"integer": True, "minimum": 1, "maximum": 10**6},
    "lr": {"above": 0},  # a huge one is allowed: divergence is detected and explained
    "momentum": {"minimum": 0, "maximum": 1},
    "weight_decay": {"minimum": 0, "maximum": 1e3},
    "warmup_epochs": {"minimum": 0, "maximum": 10**6},
    "step_epochs": {"integer": True, "minimum": 1, "maximum": 10**6},
    "gamma": {"above": 0, "maximum": 1},
    "label_smoothing": {"minimum": 0, "maximum": 0.999},
    "clip_grad": {"above": 0, "maximum": 1e12},
    "seed": {"integer": True, "minimum": 0, "maximum": 2**63 - 1},
    "image_size": {"integer": True, "minimum": 1, "maximum": MAX_IMAGE_SIZE},
    "mixup": {"minimum": 0, "maximum": 1e3},
    "cutmix": {"minimum": 0, "maximum": 1e3},
    "ema": {"above": 0, "maximum": 0.999999},
    "head_lr_mult": {"above": 0, "maximum": 1e6},
    "workers": {"integer": True, "minimum": 0, "maximum": 1024},
    "checkpoint_every": {"integer": True, "minimum": 0, "maximum": MAX_STEPS},
    "log_every": {"integer": True, "minimum": 1, "maximum": MAX_STEPS},
}
FLAGS = ("pretrained", "channels_last", "compile", "tensorboard")
TEXTS = ("model", "dataset", "data_root", "weights", "freeze", "device")  # required or None
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
        try:
            self._check()
        except InvalidOverrideError as exc:
            raise TrainingError(str(exc)) from None

    def _check(self) -> None:
        choices = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "amp": (None, "bf16", "fp16"),
                   "augment": (None, *POLICIES)}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise TrainingError(f"{name} must be one of {', '.join(map(str, allowed))}, got {getattr(self, name)!r:.80}")
        for name in TEXTS:
            value = getattr(self, name)
            if (value is not None or name in ("model", "dataset")) and (not isinstance(value, str) or not value.strip()
                                                                      or len(value) > 4096):
                raise InvalidOverrideError(name, f"must be a non-empty text, got {value!r:.80}")
        if self.out is not None:
            self.out = str(check_path(self.out, "out"))
        for name, bounds in NUMBERS.items():
            value = getattr(self, name)
            if value is not None or name not in ("max_steps", "lr", "weight_decay", "clip_grad", "image_size", "ema",
                                                 "workers"):
                setattr(self, name, check_number(value, name, **bounds))
        for name in FLAGS:
            if not isinstance(getattr(self, name), bool):
                raise InvalidOverrideError(name, f"must be true or false, got {getattr(self, name)!r:.80}")
        for name in ("data_options", "model_options"):
            options = getattr(self, name)
            if not isinstance(options, dict) or not all(isinstance(key, str) for key in options):
                raise InvalidOverrideError(name, f"must be a mapping of option names to values, got {options!r:.80}")
            if not all(value is None or isinstance(value, (bool, int, float, str, list)) for value in options.values()):
                raise InvalidOverrideError(name, "values must be numbers, text, true/false, lists or null")
        check_create_options(self.model_options, "model_options")
        if self.weights and self.pretrained:
            raise TrainingError("give weights (a file) or pretrained (the store's file), not both")

    @classmethod
    def from_saved(cls, saved: Any, **overrides: Any) -> TrainConfig:
        """A configuration read from a file (a resumed run's), checked as any other."""
        if not isinstance(saved, dict):
            raise TrainingError(f"the saved configuration is not a mapping but {type(saved).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(key) for key in saved if key not in known)
        if unknown:
            raise TrainingError(f"the saved configuration has unknown options: {', '.join(unknown)[:200]}")
        try:
            return cls(**{**saved, **overrides})
        except TypeError as exc:  # a required option missing
            raise TrainingError(f"the saved configuration is incomplete: {exc}") from None

    @property
    def base_lr(self) -> float:
        return OPTIMIZERS[self.optimizer][0] if self.lr is None else self.lr

    @property
    def precision(self) -> str:
        """The arithmetic of the forward pass, in words."""
        return {None: "float32", "bf16": "bfloat16 autocast", "fp16": "float16 autocast with a gradient scaler"}[self.amp]
