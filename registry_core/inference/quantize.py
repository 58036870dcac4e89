"""int8 ONNX models, calibrated on the user's images and checked before they are published.

``quantize(model_or_file, out, calibrate=FOLDER)`` exports the model to fp32 ONNX (or
takes an fp32 ``.onnx`` file ``export`` wrote), and splits the folder's images, sorted,
into a calibration set and a held-out set (every k-th image, ``held_out`` of them). The
images go through the model's own eval transforms (the data config the file records).
ONNX Runtime's static quantisation (``quantize_static``) then writes a QDQ model with
per-channel int8 weights and uint8 activations whose ranges it measured on the
calibration set (MinMax). Uint8 activations with int8 weights is the pairing ONNX
Runtime's x86 kernels run fastest; int8 activations ran slower than fp32 here.

Both models then label the held-out images. ``QuantizationReport`` holds the top-1
agreement and the cosine similarity of the logits; below ``min_agreement`` or
``min_cosine`` nothing is written and ``QuantizationError`` carries the report. The
published file is one rename of a finished file, as every export is.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import DataError, ExportError, QuantizationError
from ..files import atomic_write_path, refuse_folder
from ..model.compose import ComposedModel
from ..model.data_config import DataConfig
from .export import DEFAULT_ATOL, DEFAULT_RTOL, ExportResult, export, resolve_source
from .extras import require
from .predict import find_images, read_image
from .runtime import OnnxModel, is_onnx_file
from .transforms import transforms

QUANTIZATIONS = ("int8",)
DEFAULT_MIN_AGREEMENT = 0.9
DEFAULT_MIN_COSINE = 0.98
DEFAULT_HELD_OUT = 0.2
CALIBRATION_BATCH = 8
METHOD = "int8 static QDQ, per-channel weights, MinMax"


@dataclass(frozen=True)
class QuantizationReport:
    """How the int8 model agreed with the fp32 one on the held-out images."""

    calibration_images: int
    held_out_images: int
    agreeing: int  # held-out images whose top-1 class is the same
    cosine_mean: float  # of the two models' logits, image by image
    cosine_min: float
    min_agreement: float
    min_cosine: float

    @property
    def top1_agreement(self) -> float:
        return self.agreeing / self.held_out_images

    @property
    def passed(self) -> bool:
        return self.top1_agreement >= self.min_agreement and self.cosine_mean >= self.min_cosine

    def summary(self) -> str:
        return (f"top-1 agreement {100 * self.top1_agreement:.1f}% ({self.agreeing}/{self.held_out_images}), logits' "
                f"cosine similarity {self.cosine_mean:.4f} (lowest {self.cosine_min:.4f}) on {self.held_out_images} "
                f"held-out images; calibrated on {self.calibration_images}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "top1_agreement": self.top1_agreement, "passed": self.passed}


def validate_quantize_request(quantize: str, calibrate: Any, out: str | os.PathLike, *, held_out: float = DEFAULT_HELD_OUT,
                              min_agreement: float = DEFAULT_MIN_AGREEMENT, min_cosine: float = DEFAULT_MIN_COSINE,
                              batch_size: int | None = None, exporting: bool = True) -> None:
    """Refuse what can be refused before a model is built: the packages, the options, the paths."""
    if quantize not in QUANTIZATIONS:
        raise ExportError(f"unknown quantisation {quantize!r}; choose one of {', '.join(QUANTIZATIONS)}")
    require([name for name in ("onnx", "onnxscript", "onnxruntime") if exporting or name != "onnxscript"],
            "int8 quantisation")
    if not 0 < held_out <= 0.5:
        raise ValueError(f"held_out must be above 0 and at most 0.5 (the share of images kept to check), got {held_out!r}")
    if not 0 <= min_agreement <= 1:
        raise ValueError(f"min_agreement must be between 0 and 1, got {min_agreement!r}")
    if not -1 <= min_cosine <= 1:
        raise ValueError(f"min_cosine must be between -1 and 1, got {min_cosine!r}")
    if batch_size is not None and not (isinstance(batch_size, int) and batch_size > 0):
        raise ValueError(f"batch_size must be a positive integer or None (a free batch), got {batch_size!r}")
    if calibrate is None:
        raise ValueError("int8 quantisation needs calibration images: a folder of them (calibrate=FOLDER)")
    if isinstance(calibrate, str | os.PathLike) and not Path(calibrate).is_dir():
        raise DataError(f"{calibrate}: no such folder of calibration images")
    refuse_folder(out)


def quantize(model_or_file: ComposedModel | str | os.PathLike, out: str | os.PathLike, *, calibrate: Any,
             held_out: float = DEFAULT_HELD_OUT, min_agreement: float = DEFAULT_MIN_AGREEMENT,
             min_cosine: float = DEFAULT_MIN_COSINE, check: bool = True, batch_size: int | None = None,
             atol: float | None = None, rtol: float | None = None, opset: int | None = None) -> ExportResult:
    """Write an int8 ONNX model of ``model_or_file`` (a model, a weights file, or an fp32
    ``.onnx`` file ``export`` wrote) to ``out``, calibrated and checked as the module
    docstring says. ``calibrate`` is a folder of images, or an ``N x C x H x W`` tensor
    already prepared for the model. ``check``, ``batch_size``, ``atol``, ``rtol`` and
    ``opset`` go to the fp32 export. The result's ``quantization`` is the report."""
    given_onnx = Path(model_or_file) if isinstance(model_or_file, str | os.PathLike) and is_onnx_file(model_or_file) else None
    validate_quantize_request("int8", calibrate, out, held_out=held_out, min_agreement=min_agreement,
                              min_cosine=min_cosine, batch_size=batch_size, exporting=given_onnx is None)
    with tempfile.TemporaryDirectory(prefix="registry-core-int8-") as tmp:
        fp32_result = None
        if given_onnx is not None:
            if Path(out).exists() and Path(out).resolve() == given_onnx.resolve():
                raise ExportError(f"{out} is the fp32 file being quantised; give another file name")
            fp32 = given_onnx
        else:
            model = resolve_source(model_or_file, out)
            if getattr(model, "features_only", False):
                raise ExportError("int8 quantisation checks the top-1 class, so it needs a classifier; this model was "
                                  "built with features_only=True")
            fp32 = Path(tmp) / "fp32.onnx"
            fp32_result = export(model, fp32, format="onnx", check=check, batch_size=batch_size, opset=opset,
                                 atol=DEFAULT_ATOL if atol is None else atol, rtol=DEFAULT_RTOL if rtol is None else rtol)
        reference = OnnxModel(fp32)
        if reference.features_only:
            raise ExportError(f"{fp32} is a features_only export; int8 quantisation checks the top-1 class of a classifier")
        if reference.metadata.get("quantization"):
            raise ExportError(f"{fp32} is already quantised ({reference.metadata['quantization']}); give the fp32 file")
        if reference.size_mismatch and not isinstance(calibrate, Tensor):
            raise ExportError(f"cannot prepare calibration images for it: {reference.size_mismatch}")
        checking, calibrating = split(calibration_inputs(calibrate, reference.data_config), held_out)
        int8 = Path(tmp) / "int8.onnx"
        _quantize_static(_preprocessed(fp32, Path(tmp) / "prepared.onnx"), int8, reference, calibrating)
        method = f"{reference.metadata.get('method', 'onnx')}, {METHOD}"
        metadata = {**reference.metadata, "method": method, "quantization": "int8"}
        _record(int8, metadata)
        report = agreement(reference, OnnxModel(int8), checking, min_agreement=min_agreement, min_cosine=min_cosine,
                           calibration_images=len(calibrating))
        if not report.passed:
            raise QuantizationError(f"refused: the int8 model agrees too little with the fp32 one ({report.summary()}; "
                                    f"required: top-1 agreement {100 * min_agreement:.1f}%, cosine {min_cosine}); "
                                    "nothing was written", report)
        metadata["calibration"] = report.summary()
        _record(int8, metadata)
        atomic_write_path(out, lambda partial: shutil.copyfile(int8, partial))
    base = fp32_result or ExportResult(path=Path(out), format="onnx", method="", input_shape=reference.input_shape,
                                       metadata=reference.metadata)
    return replace(base, path=Path(out), method=method, metadata=metadata, quantization=report)


def calibration_inputs(calibrate: Any, data_config: DataConfig) -> Tensor:
    """The calibration images as one prepared float tensor: a folder's image files through
    the eval transforms of ``data_config``, or a prepared tensor as it is."""
    if isinstance(calibrate, Tensor):
        inputs = calibrate.detach().to("cpu", torch.float32)
        if inputs.ndim != 4:
            raise DataError(f"prepared calibration images must be an N x C x H x W tensor, got shape {tuple(inputs.shape)}")
    else:
        transform = transforms(data_config)
        inputs = torch.stack([transform(read_image(path)) for path in find_images([calibrate]).files])
    if len(inputs) < 2:
        raise DataError(f"calibration needs at least 2 images (some to calibrate on, some held out to check), "
                        f"got {len(inputs)}")
    return inputs


def split(inputs: Tensor, held_out: float = DEFAULT_HELD_OUT) -> tuple[Tensor, Tensor]:
    """``(held out, calibration)``: every k-th image (the first included) is held out to
    check, ``held_out`` of them; the others calibrate."""
    step = max(2, round(1 / held_out))
    keep = torch.arange(len(inputs)) % step == 0
    return inputs[keep], inputs[~keep]


def agreement(reference: OnnxModel, quantized: OnnxModel, inputs: Tensor, *, min_agreement: float = DEFAULT_MIN_AGREEMENT,
              min_cosine: float = DEFAULT_MIN_COSINE, calibration_images: int = 0) -> QuantizationReport:
    """Top-1 agreement and logits' cosine similarity of two runnable models on ``inputs``."""
    expected = torch.cat([reference(chunk) for chunk in inputs.split(CALIBRATION_BATCH)]).double()
    got = torch.cat([quantized(chunk) for chunk in inputs.split(CALIBRATION_BATCH)]).double()
    cosine = torch.nn.functional.cosine_similarity(expected, got, dim=1, eps=1e-12)
    cosine = torch.where(cosine.isfinite(), cosine, torch.full_like(cosine, -1.0))  # NaN logits agree with nothing
    return QuantizationReport(calibration_images=calibration_images, held_out_images=len(inputs),
                              agreeing=int((expected.argmax(1) == got.argmax(1)).sum()),
                              cosine_mean=float(cosine.mean()), cosine_min=float(cosine.min()),
                              min_agreement=min_agreement, min_cosine=min_cosine)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ONNX Runtime's quantisation tools log their progress and advice at warning level."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def _preprocessed(fp32: Path, out: Path) -> Path:
    """The model after ONNX Runtime's recommended pre-processing (shape inference and
    graph optimisation), or as it is where that step fails: it only helps."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        with _quiet():
            quant_pre_process(str(fp32), str(out))
    except Exception:  # a step that only helps; quantize_static works on the plain graph too
        return fp32
    return out


def _quantize_static(source: Path, out: Path, reference: OnnxModel, inputs: Tensor) -> None:
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(_batches(inputs, reference.fixed_batch))

        def get_next(self) -> dict[str, Any] | None:
            batch = next(self.batches, None)
            return None if batch is None else {reference.input_name: batch.numpy()}

    try:
        with _quiet():
            quantize_static(str(source), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
    except Exception as exc:  # the quantiser raises whatever its graph passes raise
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ExportError(f"ONNX Runtime could not quantise the model: {type(exc).__name__}: {first}") from exc


def _batches(inputs: Tensor, fixed: int | None) -> Iterator[Tensor]:
    """``inputs`` in batches the graph takes: up to ``CALIBRATION_BATCH``, or exactly a
    fixed batch (the last one filled up with its own first images)."""
    size = fixed or CALIBRATION_BATCH
    for start in range(0, len(inputs), size):
        chunk = inputs[start : start + size].contiguous()
        if fixed and len(chunk) < fixed:
            chunk = chunk.repeat(math.ceil(fixed / len(chunk)), 1, 1, 1)[:fixed].contiguous()
        yield chunk


def _record(path: Path, metadata: dict[str, str]) -> None:
    """Replace the ONNX file's ``metadata_props`` with ``metadata``."""
    import onnx

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))
