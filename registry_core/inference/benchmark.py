"""``benchmark(name)``: a registered model's inference and training throughput in every
variant, against torchvision's and timm's model of the same name, in one process.

Variants (``bench_models.py`` builds them): ``torchvision``, ``torchvision+cl`` and
``timm`` (eager, the references); ours ``eager``, ``channels_last``, ``fused``
(``model.fuse()``), ``fused+cl``, ``compiled`` (``torch.compile``), ``onnxruntime`` (the
fp32 ONNX export) and ``int8`` (the statically quantised export). Training times one SGD
step (forward, cross-entropy, backward, update) of the variants that can train.

Fairness: every variant of a (mode, image size, batch size) group gets the same seeded
batch; each is warmed up, and then the repetitions go round the variants, forwards and
backwards in turn, so that a change of load on the machine hits all of them alike. A
repetition runs a variant enough times to last ``min_time`` seconds; its time per call is
what is kept. A variant's figure is its median; ratios are to the baseline (torchvision
eager, else timm eager, else ours eager) in the same group: above 1, faster. The best
repetitions' ratio is kept too: on a shared machine the fastest repetition is the least
disturbed. ``cosine`` is the mean cosine similarity of a variant's logits to our eager
model's on the timed batch, where both hold the same weights.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import math
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import InputSizeError
from ..model.data_config import DataConfig
from .bench_models import Candidate, OnnxBuilder, Skipped, build_family, inference_candidates, main_output, train_candidates
from .bench_settings import BASELINES, BenchmarkSettings


@dataclass(frozen=True)
class Measurement:
    """One variant in one group: images per second (median), and its ratios to the baseline."""

    mode: str
    image_size: int
    batch: int
    variant: str
    images_per_s: float
    best_images_per_s: float
    baseline: str
    ratio: float
    best_ratio: float
    cosine: float | None


@dataclass
class BenchmarkReport:
    """Everything one run measured, with the conditions it ran under."""

    model: str
    settings: BenchmarkSettings
    environment: dict[str, Any]
    measurements: list[Measurement] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    quantization: dict[int, Any] = field(default_factory=dict)  # image size -> QuantizationReport

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "settings": asdict(self.settings), "environment": self.environment,
                "results": [asdict(m) for m in self.measurements], "skipped": [asdict(s) for s in self.skipped],
                "notes": self.notes, "int8": {str(size): r.to_dict() for size, r in self.quantization.items()}}


def benchmark(name: str, settings: BenchmarkSettings | None = None) -> BenchmarkReport:
    """Time ``name`` as ``settings`` say (see the module docstring) and return the report."""
    settings = settings or BenchmarkSettings()
    settings.validate()
    with _threads(settings.threads):
        family = build_family(name, settings.variants)
        ours = family.ours
        sizes = settings.image_sizes or (ours.data_config.eval_size,)
        height, width = ours.meta.min_input_size[1:]
        for size in sizes:
            if size < height or size < width:
                raise InputSizeError(f"{name} takes images of at least {height}x{width} pixels (its min_input_size); "
                                     f"image size {size} is too small")
        device = torch.device(settings.device)
        try:
            for model in (ours, *family.references.values()):
                model.to(device)
        except (RuntimeError, AssertionError) as exc:  # CUDA asked for without it, or an unknown index
            raise ValueError(f"cannot run on device {settings.device!r}: {str(exc).strip().splitlines()[0]}") from None
        report = BenchmarkReport(name, settings, environment(settings))
        report.notes += family.notes
        report.notes.append(f"timed batches: {_input_note(ours, settings.calibrate, sizes)}")
        held_out = None
        if settings.calibrate is not None:
            from .quantize import calibration_inputs, split

            held_out = split(calibration_inputs(settings.calibrate, ours.data_config))[0]
        skipped = {(s.variant, s.mode): s for s in family.skipped if s.mode in settings.modes}
        clock = time.perf_counter if settings.clock == "wall" else time.process_time
        sync = torch.cuda.synchronize if device.type == "cuda" else _nothing
        with tempfile.TemporaryDirectory(prefix="registry-core-benchmark-") as tmp:
            onnx = OnnxBuilder(family, settings.calibrate, Path(tmp))
            made: dict[str, Any] = {}
            for size in sizes:
                groups = []
                if "inference" in settings.modes:
                    variants = settings.variants
                    if device.type != "cpu":
                        skipped |= {(v, "inference"): Skipped(v, "inference", "ONNX Runtime runs on the CPU here")
                                    for v in ("onnxruntime", "int8") if v in variants}
                        variants = tuple(v for v in variants if v not in ("onnxruntime", "int8"))
                    groups.append(("inference", *inference_candidates(family, variants, size, onnx, made)))
                if "train" in settings.modes:
                    groups.append(("train", *train_candidates(family, settings.variants, ours.num_classes)))
                for mode, candidates, not_built in groups:
                    skipped |= {(s.variant, s.mode): s for s in not_built}
                    for batch in settings.batch_sizes:
                        x = timed_batch(ours.data_config, held_out, size, batch).to(device)
                        with torch.inference_mode() if mode == "inference" else contextlib.nullcontext():
                            timings, failed = time_candidates(candidates, x, settings, clock, sync)
                        skipped |= {(s.variant, mode): Skipped(s.variant, mode, s.reason) for s in failed}
                        report.measurements += _measurements(mode, size, batch, candidates, timings)
            report.quantization = dict(onnx.reports)
        report.skipped = list(skipped.values())
        report.environment["load_average_end"] = _load()
    return report


def timed_batch(config: DataConfig, images: Tensor | None, size: int, batch: int) -> Tensor:
    """The batch every variant of a group is timed on: ``images`` (the held-out
    calibration images, prepared at the eval size) repeated to fill it, or seeded random
    values at other sizes or without images."""
    if images is not None and size == config.eval_size:
        return images[torch.arange(batch) % len(images)]
    return torch.randn(batch, config.input_size[0], size, size, generator=torch.Generator().manual_seed(0))


def _input_note(model: Any, calibrate: str | None, sizes: tuple[int, ...]) -> str:
    eval_size = model.data_config.eval_size
    if calibrate is not None and eval_size in sizes:
        rest = [s for s in sizes if s != eval_size]
        return (f"at {eval_size}px, the held-out images of {calibrate} through the model's transforms"
                + (f"; at {', '.join(map(str, rest))}px, seeded random values" if rest else ""))
    return "seeded random values"


@dataclass
class Timing:
    per_call: list[float]  # seconds, one per repetition
    output: Any


def time_candidates(candidates: list[Candidate], x: Tensor, settings: BenchmarkSettings, clock: Callable[[], float],
                    sync: Callable[[], None]) -> tuple[dict[str, Timing], list[Skipped]]:
    """Warm each candidate up, then time them in turn (see the module docstring). A
    candidate that raises is skipped with the reason."""
    inputs = {c.variant: c.prepare(x) for c in candidates}
    timings: dict[str, Timing] = {}
    calls: dict[str, int] = {}
    failed: list[Skipped] = []
    for c in candidates:
        try:
            for _ in range(settings.warmup - 1):
                c.run(inputs[c.variant])
            sync()
            start = clock()
            output = c.run(inputs[c.variant])
            sync()
            elapsed = clock() - start
        except Exception as exc:  # a variant that cannot run here (a compile error, a too-small batch) is reported
            failed.append(Skipped(c.variant, "", f"failed: {type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:160]}"))
            continue
        timings[c.variant] = Timing([], output)
        calls[c.variant] = max(1, math.ceil(settings.min_time / elapsed)) if elapsed > 0 else 1
    by_name = {c.variant: c for c in candidates}
    order = list(timings)
    for rep in range(settings.reps):
        for variant in order if rep % 2 == 0 else reversed(order):
            run, batch, n = by_name[variant].run, inputs[variant], calls[variant]
            sync()
            start = clock()
            for _ in range(n):
                run(batch)
            sync()
            timings[variant].per_call.append((clock() - start) / n)
    return timings, failed


def _measurements(mode: str, size: int, batch: int, candidates: list[Candidate],
                  timings: dict[str, Timing]) -> list[Measurement]:
    if not timings:
        return []
    baseline = next((b for b in BASELINES if b in timings), next(iter(timings)))
    base = timings[baseline].per_call
    comparable = {c.variant for c in candidates if c.compare}
    reference = next((timings[v].output for v in ("eager", baseline) if v in timings and v in comparable), None)
    if mode != "inference":
        reference = None
    found = []
    for variant, timing in timings.items():
        median, best = statistics.median(timing.per_call), min(timing.per_call)
        cosine = _cosine(timing.output, reference) if reference is not None and variant in comparable else None
        found.append(Measurement(mode, size, batch, variant, batch / median if median > 0 else math.inf,
                                 batch / best if best > 0 else math.inf, baseline,
                                 statistics.median(base) / median if median > 0 else math.inf,
                                 min(base) / best if best > 0 else math.inf, cosine))
    return found


def _cosine(output: Any, reference: Any) -> float:
    got, want = main_output(output).detach().float().cpu(), main_output(reference).detach().float().cpu()
    return float(torch.nn.functional.cosine_similarity(got.flatten(1), want.flatten(1), dim=1, eps=1e-12).mean())


def environment(settings: BenchmarkSettings) -> dict[str, Any]:
    """The conditions of a run: the machine, the thread budget, the libraries' versions."""
    versions: dict[str, str | None] = {}
    for package in ("torch", "torchvision", "timm", "onnxruntime"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    device = settings.device
    if device.startswith("cuda") and torch.cuda.is_available():
        device = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return {"machine": platform.machine(), "processor": platform.processor() or None, "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "device": device, "versions": versions,
            "clock": settings.clock, "load_average_start": _load()}


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _nothing() -> None:
    return None


@contextlib.contextmanager
def _threads(threads: int | None) -> Iterator[None]:
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
