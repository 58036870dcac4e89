"""What ``benchmark`` times, as plain data checked without torch (so the command refuses
a bad option at once): the variants, the modes and ``BenchmarkSettings``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REFERENCES = ("torchvision", "torchvision+cl", "timm")
OURS = ("eager", "channels_last", "fused", "fused+cl", "compiled", "onnxruntime", "int8")
VARIANTS = REFERENCES + OURS
DEFAULT_VARIANTS = tuple(v for v in VARIANTS if v not in ("torchvision+cl", "compiled"))  # compiling takes minutes
INFERENCE_ONLY = ("fused", "fused+cl", "onnxruntime", "int8")
MODES = ("inference", "train")
BASELINES = ("torchvision", "timm", "eager")  # the first one timed in a group is what ratios are to
CLOCKS = ("wall", "cpu")


@dataclass(frozen=True)
class BenchmarkSettings:
    """What to time. ``image_sizes`` empty: the model's eval size."""

    batch_sizes: tuple[int, ...] = (1, 8)
    image_sizes: tuple[int, ...] = ()
    modes: tuple[str, ...] = MODES
    variants: tuple[str, ...] = DEFAULT_VARIANTS
    reps: int = 5
    warmup: int = 2
    min_time: float = 0.05
    calibrate: str | None = None
    threads: int | None = None
    clock: str = "wall"
    device: str = "cpu"

    def validate(self) -> None:
        """Refuse impossible settings (a ``ValueError``), before anything is built."""
        problems = []
        for label, values in (("batch sizes", self.batch_sizes), ("image sizes", self.image_sizes)):
            if not all(isinstance(v, int) and v > 0 for v in values):
                problems.append(f"{label} must be positive integers, got {list(values)}")
        if not self.batch_sizes:
            problems.append("give at least one batch size")
        for label, chosen, known in (("mode", self.modes, MODES), ("variant", self.variants, VARIANTS),
                                     ("clock", (self.clock,), CLOCKS)):
            unknown = [v for v in chosen if v not in known]
            if unknown or not chosen:
                problems.append(f"unknown {label} {', '.join(map(repr, unknown)) or '(none given)'}; choose from "
                                f"{', '.join(known)}")
        if not (isinstance(self.reps, int) and self.reps >= 1 and isinstance(self.warmup, int) and self.warmup >= 1):
            problems.append(f"reps and warmup must be at least 1, got {self.reps} and {self.warmup}")
        if not self.min_time >= 0:
            problems.append(f"min_time must be 0 or more seconds, got {self.min_time}")
        if self.threads is not None and self.threads < 1:
            problems.append(f"threads must be at least 1, got {self.threads}")
        if not isinstance(self.device, str) or self.device.split(":")[0] not in ("cpu", "cuda"):
            problems.append(f"device must be cpu or cuda (cuda:N), got {self.device!r}")
        if self.calibrate is not None and not Path(self.calibrate).is_dir():
            problems.append(f"{self.calibrate}: no such folder of calibration images")
        if problems:
            raise ValueError("; ".join(problems))
