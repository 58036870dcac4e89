"""How a model's input is prepared: sizes, resize and crop, interpolation, mean and std.

Preprocessing belongs to a set of weights, not to an architecture: torchvision's
ResNet-50 V1 and V2 weights, or timm's ``resnet50.a1_in1k``, share one architecture and
evaluate differently. A model starts with its architecture's defaults
(``DataConfig.from_meta``); a weight tag or a weights file replaces them. Plain data, no
torch: listings and ``info`` read it without importing torch.

The eval pipeline is: resize the shorter side to ``eval_resize``, centre-crop
``eval_size``, scale to [0, 1], normalise with ``mean``/``std``. ``test_input_size`` and
``test_crop_pct`` (timm's names) are the size and crop a set of weights is evaluated at
when it differs from the size it was trained at; ``resize_size`` states the shorter
side outright where the source library does (torchvision's ``resize_size``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import SpecError
from .spec import IMAGENET_MEAN, IMAGENET_STD, fit_channels

INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
CROP_MODES = ("center", "squash")  # squash: both sides resized to eval_resize (aspect not kept), as timm's


@dataclass(frozen=True)
class DataConfig:
    """The preprocessing a model (or one set of its weights) expects."""

    input_size: tuple[int, int, int] = (3, 224, 224)
    interpolation: str = "bilinear"
    crop_pct: float = 0.875
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    test_input_size: tuple[int, int, int] | None = None
    test_crop_pct: float | None = None
    resize_size: int | None = None
    crop_mode: str = "center"

    def __post_init__(self):
        problems = []
        sizes = [("input_size", self.input_size)] + ([("test_input_size", self.test_input_size)] if self.test_input_size else [])
        for name, size in sizes:
            if not (isinstance(size, tuple) and len(size) == 3 and all(isinstance(v, int) and 0 < v <= 65536 for v in size)):
                problems.append(f"{name} must be three positive integers (C, H, W), got {size!r}")
        for name, pct in (("crop_pct", self.crop_pct), ("test_crop_pct", self.test_crop_pct)):
            if pct is not None and not (isinstance(pct, int | float) and 0 < pct <= 1):
                problems.append(f"{name} must be in (0, 1], got {pct!r}")
        if self.resize_size is not None and not (isinstance(self.resize_size, int) and 0 < self.resize_size <= 65536):
            problems.append(f"resize_size must be a positive integer, got {self.resize_size!r}")
        if self.interpolation not in INTERPOLATIONS:
            problems.append(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}")
        if self.crop_mode not in CROP_MODES:
            problems.append(f"crop_mode must be one of {', '.join(CROP_MODES)}, got {self.crop_mode!r}")
        channels = self.input_size[0] if isinstance(self.input_size, tuple) and self.input_size else None
        for name, values in (("mean", self.mean), ("std", self.std)):
            if not (isinstance(values, tuple) and all(isinstance(v, int | float) and math.isfinite(v) for v in values)):
                problems.append(f"{name} must be a tuple of finite numbers, got {values!r}")
            elif channels is not None and len(values) != channels:
                problems.append(f"{name} has {len(values)} values for {channels} input channels")
        if isinstance(self.std, tuple) and any(isinstance(v, int | float) and v <= 0 for v in self.std):
            problems.append(f"std values must be positive, got {self.std!r}")
        if problems:
            raise SpecError("invalid data config: " + "; ".join(problems))

    @classmethod
    def from_meta(cls, meta) -> DataConfig:
        """An architecture's defaults (a ``ModelMeta``)."""
        return cls(input_size=tuple(meta.input_size), interpolation=meta.interpolation, crop_pct=meta.crop_pct,
                   mean=tuple(meta.mean), std=tuple(meta.std))

    @property
    def eval_size(self) -> int:
        """The side of the square an evaluation crops."""
        return (self.test_input_size or self.input_size)[-1]

    @property
    def eval_crop_pct(self) -> float:
        return self.test_crop_pct if self.test_crop_pct else self.crop_pct

    @property
    def eval_resize(self) -> int:
        """The shorter side an evaluation resizes to before cropping ``eval_size``."""
        if self.resize_size is not None:
            return self.resize_size
        return math.floor(self.eval_size / self.eval_crop_pct)

    def with_channels(self, in_chans: int) -> DataConfig:
        """This config for ``in_chans`` input channels (mean/std averaged or repeated)."""
        if in_chans == self.input_size[0]:
            return self
        fit = fit_channels
        test = (in_chans, *self.test_input_size[1:]) if self.test_input_size else None
        return DataConfig(**{**self.to_dict(), "input_size": (in_chans, *self.input_size[1:]), "test_input_size": test,
                             "mean": fit(self.mean, in_chans), "std": fit(self.std, in_chans)})

    def to_dict(self) -> dict[str, Any]:
        """Every field, ``None``s included."""
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DataConfig:
        """The config a mapping describes (lists become tuples); unknown keys are an error."""
        if not isinstance(values, Mapping):
            raise SpecError(f"a data config must be a mapping, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SpecError(f"unknown data config field(s): {', '.join(map(str, unknown))}")
        converted: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**converted)

    @classmethod
    def from_json(cls, text: str) -> DataConfig:
        try:
            values = json.loads(text)
        except ValueError as exc:
            raise SpecError(f"data config is not JSON: {exc}") from None
        return cls.from_dict(values)

