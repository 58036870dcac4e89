"""Exporting a model to run without registry-core: TorchScript, torch.export, ONNX.

A deployer gets one file that needs only torch (or only onnxruntime) and says how to
prepare its input: every artifact records the model's name, weight tag, data config
and class names (TorchScript ``_extra_files``, ``torch.export.save``'s
``extra_files``, ONNX ``metadata_props``; ``read_export_metadata`` reads any of them).

Every format takes one path: write the artifact to a temporary sibling of ``out``,
load it back with that format's own loader and compare its outputs with the model's
on a seeded input, and only then rename it over ``out``. A failed export or check
leaves ``out`` as it was. The batch dimension stays free where the format allows; it
is traced at ``EXAMPLE_BATCH`` (torch.export fixes a dimension it sees at size 1) and
checked at batch 1, so a batch baked into the artifact fails the check.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .._version import __version__
from ..errors import ExportError, InputSizeError
from ..files import atomic_write_path, refuse_folder
from ..model.compose import ComposedModel
from .extras import ONNX_ADVICE, installed, require

FORMATS = ("torchscript", "exported", "onnx")
SUFFIXES = {"torchscript": ".pt", "exported": ".pt2", "onnx": ".onnx"}
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
DEFAULT_ATOL = 1e-4
DEFAULT_RTOL = 1e-5  # of the largest reference output: float error grows with the size of the values summed
EXAMPLE_BATCH = 2
SEED = 0
INPUT_NAME = "input"

Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class ExportResult:
    """What ``export`` wrote and how well the artifact reproduced the model.

    ``method`` is how the graph was captured (``script`` or ``trace`` for TorchScript,
    ``torch.export``, ``onnx dynamo opset N``); ``note`` says why scripting fell back to
    tracing. ``input_shape`` has ``None`` for each dimension the artifact leaves free.
    ``max_abs_diff`` and ``tolerance`` are ``None`` when the check was skipped.
    ``quantization`` is an int8 file's ``QuantizationReport`` (see ``quantize``).
    """

    path: Path
    format: str
    method: str
    input_shape: Shape
    metadata: dict[str, str] = field(repr=False)
    max_abs_diff: float | None = None
    tolerance: float | None = None
    checked_shape: tuple[int, ...] | None = None
    note: str = ""
    quantization: Any = None

    def shape_summary(self) -> str:
        """``(batch, 3, 224, 224)``: a free dimension by its name, a fixed one by its size."""
        names = ("batch", "channels", "height", "width")
        return "(" + ", ".join(names[i] if d is None else str(d) for i, d in enumerate(self.input_shape)) + ")"

    def check_summary(self) -> str:
        if self.max_abs_diff is None:
            return "not checked"
        shape = "x".join(map(str, self.checked_shape or ()))
        return f"max |difference| {self.max_abs_diff:.3g} (allowed {self.tolerance:.3g}) on a {shape} input, seed {SEED}"


@dataclass(frozen=True)
class _Prepared:
    artifact: Any
    method: str
    input_shape: Shape
    note: str = ""


def export(
    model_or_file: ComposedModel | str | os.PathLike,
    out: str | os.PathLike,
    *,
    format: str = "torchscript",
    check: bool = True,
    batch_size: int | None = None,
    image_size: int | None = None,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    opset: int | None = None,
) -> ExportResult:
    """Export a model, or the model a weights file holds, to ``out``.

    ``format`` is ``"torchscript"`` (``torch.jit.script``, or ``torch.jit.trace`` where
    scripting fails), ``"exported"`` (a ``torch.export`` program saved as ``.pt2``) or
    ``"onnx"`` (the dynamo exporter; needs ``registry-core[onnx]``). ``batch_size=None``
    leaves the batch free; a number fixes it (TorchScript's scripted graph stays free
    whatever is asked). ``image_size`` is the side of the square input the graph is
    captured at (default: the data config's eval size); a scripted graph takes any
    size. With ``check``, the written artifact is loaded back and must match the model
    within ``atol + rtol * max|output|``, or nothing is written and ``ExportError`` says
    by how much. The model is exported in eval mode and left in the mode it was in.
    """
    validate_request(format, out, check=check, batch_size=batch_size)
    model = resolve_source(model_or_file, out)
    size = _image_size(model, image_size)
    channels = model.data_config.input_size[0]
    dynamic = batch_size is None
    example = _seeded_input(model, batch_size or EXAMPLE_BATCH, channels, size, SEED + 1)  # the check sees other images
    probe = _seeded_input(model, 1 if batch_size is None else batch_size, channels, size, SEED)
    prepare, save, load = _WRITERS[format]
    was_training = model.training
    model.eval()
    try:
        prepared = prepare(model, example, dynamic, opset)
        metadata = export_metadata(model, format, prepared.method, prepared.input_shape)
        checked: dict[str, Any] = {}

        def write(tmp: str) -> None:
            save(prepared.artifact, tmp, metadata)
            if check:
                checked.update(_compare(model, load(tmp), probe, atol, rtol))

        atomic_write_path(out, write)
    finally:
        model.train(was_training)
    return ExportResult(path=Path(out), format=format, method=prepared.method, input_shape=prepared.input_shape,
                        metadata=metadata, note=prepared.note, checked_shape=tuple(probe.shape) if check else None, **checked)


def validate_request(format: str, out: str | os.PathLike, *, check: bool = True, batch_size: int | None = None) -> None:
    """Refuse what can be refused before a model is built or loaded: an unknown format,
    a missing ONNX extra, a bad batch size, a folder where the file should go."""
    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    if format == "onnx":
        require_onnx(runtime=check)
    if batch_size is not None and not (isinstance(batch_size, int) and batch_size > 0):
        raise ExportError(f"batch_size must be a positive integer or None (a free batch), got {batch_size!r}")
    refuse_folder(out)


def require_onnx(runtime: bool = True) -> None:
    """ONNX export needs onnx and onnxscript, its check onnxruntime: say how to get them
    before any work is done."""
    require([name for name in ONNX_PACKAGES if runtime or name != "onnxruntime"], "ONNX export")


def export_metadata(model: ComposedModel, format: str, method: str, input_shape: Shape) -> dict[str, str]:
    """The text entries every artifact carries: enough to prepare its input and name its outputs."""
    return {
        "model_name": model.model_name,
        "pretrained_tag": model.pretrained_tag or "",
        "data_config": model.data_config.to_json(),
        "class_names": json.dumps(None if model.class_names is None else list(model.class_names)),
        "input_shape": json.dumps(list(input_shape)),
        "format": format,
        "method": method,
        "exported_by": f"registry-core {__version__}, torch {torch.__version__}",
    }


def read_export_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The entries ``export`` recorded in an artifact, read without loading its graph
    (an ONNX file needs the onnx package)."""
    if not Path(path).is_file():
        raise ExportError(f"{path}: no such file")
    if zipfile.is_zipfile(path):  # TorchScript and .pt2 archives both keep extra files under <root>/extra/
        with zipfile.ZipFile(path) as archive:
            return {parts[2]: archive.read(name).decode("utf-8") for name in archive.namelist()
                    if len(parts := name.split("/")) == 3 and parts[1] == "extra" and parts[2]}
    if not installed("onnx"):
        raise ExportError(f"{path} is not a TorchScript or .pt2 archive; reading it as ONNX needs onnx: {ONNX_ADVICE}")
    import onnx

    try:
        proto = onnx.load(os.fspath(path), load_external_data=False)
    except Exception as exc:  # protobuf's decode errors have no common base class
        raise ExportError(f"{path} is neither a TorchScript or .pt2 archive nor an ONNX model: {exc}") from None
    return {entry.key: entry.value for entry in proto.metadata_props}


def resolve_source(model_or_file: ComposedModel | str | os.PathLike, out: str | os.PathLike) -> ComposedModel:
    if isinstance(model_or_file, ComposedModel):
        return model_or_file
    if not isinstance(model_or_file, str | os.PathLike):
        raise ExportError(f"expected a registry-core model or a weights file, got {type(model_or_file).__name__}")
    source = Path(model_or_file)
    if not source.is_file():
        raise ExportError(f"{source}: no such weights file")
    if Path(out).exists() and Path(out).resolve() == source.resolve():
        raise ExportError(f"{out} is the weights file being exported; give another file name")
    from ..factory.create import load

    return load(source)


def _image_size(model: ComposedModel, image_size: int | None) -> int:
    size = model.data_config.eval_size if image_size is None else image_size
    if not (isinstance(size, int) and size > 0):
        raise ExportError(f"image_size must be a positive integer, got {image_size!r}")
    height, width = model.meta.min_input_size[1:]
    if size < height or size < width:
        raise InputSizeError(f"{model.model_name or 'this model'} takes images of at least {height}x{width} pixels "
                             f"(its min_input_size); image_size {size} is too small")
    return size


def _seeded_input(model: nn.Module, batch: int, channels: int, size: int, seed: int) -> Tensor:
    """A reproducible input on the model's device, in its floating dtype."""
    first = next((p for p in model.parameters() if p.is_floating_point()), None)
    device, dtype = (first.device, first.dtype) if first is not None else (torch.device("cpu"), torch.float32)
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, size, size, generator=generator).to(device=device, dtype=dtype)


@contextlib.contextmanager
def _quiet_capture() -> Iterator[None]:
    """Torch's advice about TorchScript's future and about tracing is not news to
    someone who asked for the format; the check below is the real test."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")
        warnings.filterwarnings("ignore", message="The TorchScript type system")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text[:limit]}"


def _failed(what: str, model: ComposedModel, exc: Exception) -> ExportError:
    return ExportError(f"{what} could not export {model.model_name or 'the model'}: {_first_line(exc)}")


def _batch_dims(dynamic: bool) -> dict[str, dict[int, Any]] | None:
    return {"x": {0: torch.export.Dim("batch", min=1)}} if dynamic else None


def _shape(example: Tensor, dynamic: bool) -> Shape:
    return (None if dynamic else example.shape[0], *example.shape[1:])


def _prepare_torchscript(model: ComposedModel, example: Tensor, dynamic: bool, opset: int | None) -> _Prepared:
    with _quiet_capture():
        try:
            return _Prepared(torch.jit.script(model), "script", (None, example.shape[1], None, None))
        except Exception as scripting:  # TorchScript reports unsupported Python in several exception types
            note = f"torch.jit.script failed ({_first_line(scripting)}); traced instead"
            try:
                traced = torch.jit.trace(model, example, strict=False, check_trace=False)
            except Exception as exc:
                raise ExportError(f"TorchScript could not export {model.model_name or 'the model'}: scripting failed "
                                  f"({_first_line(scripting)}) and so did tracing ({_first_line(exc)})") from exc
    return _Prepared(traced, "trace", _shape(example, dynamic), note)


def _save_torchscript(module: Any, path: str, metadata: dict[str, str]) -> None:
    with _quiet_capture():
        torch.jit.save(module, path, _extra_files=metadata)


def _load_torchscript(path: str) -> Callable[[Tensor], Any]:
    with _quiet_capture():
        return torch.jit.load(path)


def _prepare_exported(model: ComposedModel, example: Tensor, dynamic: bool, opset: int | None) -> _Prepared:
    try:
        program = torch.export.export(model, (example,), dynamic_shapes=_batch_dims(dynamic))
    except Exception as exc:  # torch.export raises its own errors and whatever the traced code raises
        raise _failed("torch.export", model, exc) from exc
    return _Prepared(program, "torch.export", _shape(example, dynamic))


def _save_exported(program: Any, path: str, metadata: dict[str, str]) -> None:
    with open(path, "wb") as handle:  # a handle: given a path, torch.export wants the name to end in .pt2
        torch.export.save(program, handle, extra_files=metadata)


def _load_exported(path: str) -> Callable[[Tensor], Any]:
    with open(path, "rb") as handle:
        return torch.export.load(handle).module()


def _prepare_onnx(model: ComposedModel, example: Tensor, dynamic: bool, opset: int | None) -> _Prepared:
    outputs = ["logits"] if model.head is not None else [f"features_{i}" for i in model.out_indices]
    try:
        program = torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=_batch_dims(dynamic),
                                    input_names=[INPUT_NAME], output_names=outputs, opset_version=opset, verbose=False)
    except ImportError as exc:
        raise ExportError(f"ONNX export could not import what it needs ({_first_line(exc)}): {ONNX_ADVICE}") from exc
    except Exception as exc:  # the exporter wraps torch.export's errors and adds its own
        raise _failed("the ONNX exporter", model, exc) from exc
    if program is None:
        raise ExportError("torch.onnx.export returned no program; this torch's exporter is not the dynamo one")
    used = program.model.opset_imports.get("", opset)
    return _Prepared(program, f"onnx dynamo opset {used}", _shape(example, dynamic))


def _save_onnx(program: Any, path: str, metadata: dict[str, str]) -> None:
    program.model.metadata_props.update(metadata)
    try:
        program.save(path, external_data=False)  # one file, so the rename that publishes it is the whole artifact
    except OSError:
        raise
    except Exception as exc:  # protobuf refuses a single file over 2 GiB
        raise ExportError(f"cannot write the model as one ONNX file: {_first_line(exc)}") from exc


def _load_onnx(path: str) -> Callable[[Tensor], Any]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the thread budget torch was given
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def run(x: Tensor) -> list[Tensor]:
        return [torch.from_numpy(a) for a in session.run(None, {INPUT_NAME: x.detach().cpu().numpy()})]

    return run


_WRITERS = {
    "torchscript": (_prepare_torchscript, _save_torchscript, _load_torchscript),
    "exported": (_prepare_exported, _save_exported, _load_exported),
    "onnx": (_prepare_onnx, _save_onnx, _load_onnx),
}


def _tensors(output: Any) -> list[Tensor]:
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, list | tuple):
        return [t for item in output for t in _tensors(item)]
    raise ExportError(f"the artifact returned a {type(output).__name__}, not tensors")


def _compare(model: ComposedModel, artifact: Callable[[Tensor], Any], x: Tensor, atol: float, rtol: float) -> dict[str, float]:
    """The largest output difference between the model and its loaded artifact, which
    must stay within ``atol + rtol * max|reference|``."""
    with torch.no_grad():
        expected = [t.detach().double().cpu() for t in _tensors(model(x))]
        try:
            got = [t.detach().double().cpu() for t in _tensors(artifact(x))]
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(f"the exported artifact failed on a {tuple(x.shape)} input: {_first_line(exc)}") from exc
    shapes = [tuple(t.shape) for t in expected], [tuple(t.shape) for t in got]
    if shapes[0] != shapes[1]:
        raise ExportError(f"the exported artifact gives outputs of shape {shapes[1]}, the model {shapes[0]}")
    diff = max((e - g).abs().max().item() for e, g in zip(expected, got))
    tolerance = atol + rtol * max(e.abs().max().item() for e in expected)
    if not diff <= tolerance:  # NaN fails too
        raise ExportError(f"the exported artifact differs from the model by {diff:.3g} on a {tuple(x.shape)} input "
                          f"(allowed {tolerance:.3g}); nothing was written")
    return {"max_abs_diff": diff, "tolerance": tolerance}
