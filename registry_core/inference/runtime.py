"""Where predictions run: torch, or ONNX Runtime over an exported ``.onnx`` file.

``OnnxModel(path)`` opens an ONNX file that ``export`` wrote (fp32 or int8) and reads,
once, what it records: the data config that prepares its input and the class names of
its outputs. It needs onnxruntime only, not registry-core's model code, torch's
exporter or the onnx package. ``runner(model, runtime)`` turns what ``predict`` is
given (a model, a weights file, an ``.onnx`` file or an ``OnnxModel``) into something
that maps a prepared batch to logits. Asked to run a model or a weights file on ONNX
Runtime, it exports the model once into a cache under ``$REGISTRY_CORE_HOME/onnx``,
keyed by a digest of the weights (and of the registry-core and torch versions), and
reuses that file afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .._version import __version__
from ..errors import ExportError, SpecError
from ..files import home
from ..model.compose import ComposedModel, main_logits
from ..model.data_config import DataConfig
from .export import export
from .extras import RUNTIMES, require
from .transforms import data_config

CACHE_FOLDER = "onnx"


def session(path: str | os.PathLike, *, device: str = "cpu", threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` for ``path`` with torch's thread budget (or
    ``threads``) on ``device`` (``cpu``, or ``cuda`` where onnxruntime has CUDA)."""
    require(["onnxruntime"], "running an ONNX file")
    import onnxruntime

    kind = device.split(":")[0]
    providers = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}.get(kind)
    if providers is None or providers[0] not in onnxruntime.get_available_providers():
        raise ValueError(f"the onnxruntime runtime cannot run on {device!r} here; its providers are "
                         f"{', '.join(onnxruntime.get_available_providers())}")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.log_severity_level = 3  # errors only: its notes on graph optimisation are not for the user
    try:
        return onnxruntime.InferenceSession(os.fspath(path), options, providers=providers)
    except Exception as exc:  # onnxruntime's errors share no public base class
        raise ExportError(f"{path}: onnxruntime cannot open it: {str(exc).strip().splitlines()[0][:200]}") from None


class OnnxModel:
    """An exported ONNX file, opened with ONNX Runtime, with the preprocessing and class
    names it records. Call it on a prepared ``N x C x H x W`` float tensor for the logits
    (a file exported with a fixed batch is fed that batch, the last one padded). A graph
    exported at another image size than its data config prepares runs on tensors, but
    ``predict`` refuses it (``size_mismatch`` says why)."""

    def __init__(self, path: str | os.PathLike, *, device: str = "cpu", threads: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise ExportError(f"{path}: no such ONNX file")
        self.session = session(self.path, device=device, threads=threads)
        recorded = dict(self.session.get_modelmeta().custom_metadata_map)
        self.metadata: dict[str, str] = recorded
        self.model_name = recorded.get("model_name", "")
        self.data_config = _recorded_config(self.path, recorded)
        self.class_names = _recorded_names(self.path, recorded)
        (graph_input,) = self.session.get_inputs()[:1] or [None]
        if graph_input is None:
            raise ExportError(f"{path}: the graph takes no input")
        self.input_name: str = graph_input.name
        shape = [d if isinstance(d, int) else None for d in graph_input.shape]
        self.input_shape: tuple[int | None, ...] = tuple(shape)
        self.fixed_batch: int | None = shape[0] if shape else None
        outputs = [o.name for o in self.session.get_outputs()]
        self.features_only = not outputs or outputs[0].startswith("features_")
        size = self.data_config.eval_size
        self.size_mismatch = ""  # why the recorded preprocessing cannot feed this graph, if it cannot
        if len(shape) == 4 and any(d is not None and d != size for d in shape[2:]):
            self.size_mismatch = (f"{path}: the graph takes {shape[2]}x{shape[3]} images, but the data config it records "
                                  f"prepares {size}x{size}; export it at the data config's size")

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.path)!r}, model_name={self.model_name!r})"

    def __call__(self, x: Tensor) -> Tensor:
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        if self.fixed_batch is None:
            return torch.from_numpy(self.session.run(None, {self.input_name: array})[0])
        import numpy as np

        step, pieces = self.fixed_batch, []
        for start in range(0, len(array), step):
            chunk = array[start : start + step]
            padded = np.concatenate([chunk, np.zeros((step - len(chunk), *chunk.shape[1:]), chunk.dtype)])
            pieces.append(self.session.run(None, {self.input_name: padded})[0][: len(chunk)])
        return torch.from_numpy(np.concatenate(pieces))

    @contextlib.contextmanager
    def running(self) -> Iterator[Callable[[Tensor], Tensor]]:
        if self.features_only:
            raise ValueError(f"{self.path} is a features_only export: it has no classifier to predict with")
        if self.size_mismatch:
            raise ExportError(self.size_mismatch)
        yield self


def _recorded_config(path: Path, recorded: dict[str, str]) -> DataConfig:
    text = recorded.get("data_config")
    if not text:
        raise ExportError(f"{path} records no data config (it was not exported by registry-core); "
                          "its input preparation is unknown")
    try:
        return DataConfig.from_json(text)
    except SpecError as exc:
        raise ExportError(f"{path}: its recorded {exc}") from None


def _recorded_names(path: Path, recorded: dict[str, str]) -> list[str] | None:
    try:
        names = json.loads(recorded.get("class_names") or "null")
    except ValueError:
        names = 0  # refused below
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise ExportError(f"{path}: its recorded class names are not a JSON list of strings")
    return names


class TorchRunner:
    """A torch model run for ``predict``: eval mode, ``inference_mode``, its own device
    and dtype, the main logits; its mode is restored afterwards."""

    def __init__(self, model: nn.Module):
        if getattr(model, "features_only", False):
            raise ValueError("this model was built with features_only=True: it has no classifier to predict with")
        self.model = model
        self.data_config = data_config(model)
        self.class_names: Sequence[str] | None = getattr(model, "class_names", None)
        self.fixed_batch: int | None = None

    @contextlib.contextmanager
    def running(self) -> Iterator[Callable[[Tensor], Tensor]]:
        parameter = next(self.model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                yield lambda batch: main_logits(self.model(batch.to(device=device, dtype=dtype)))
        finally:
            self.model.train(was_training)


def runner(model: Any, runtime: str | None = None) -> TorchRunner | OnnxModel:
    """What runs ``predict``'s batches. ``runtime`` is ``"torch"``, ``"onnxruntime"`` or
    ``None`` (ONNX Runtime for an ``.onnx`` file or an ``OnnxModel``, torch otherwise)."""
    if runtime is not None and runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    onnx_given = isinstance(model, OnnxModel) or (isinstance(model, str | os.PathLike) and is_onnx_file(model))
    if onnx_given and runtime == "torch":
        raise ValueError(f"{model} is an ONNX file: it runs on onnxruntime, not torch")
    if isinstance(model, OnnxModel):
        return model
    if runtime == "onnxruntime" or onnx_given:
        require(["onnxruntime"], "the onnxruntime runtime")
        return OnnxModel(model if onnx_given else cached_onnx(model)[0])
    if isinstance(model, str | os.PathLike):
        from ..factory.create import load

        model = load(model)
    if not isinstance(model, nn.Module):
        raise TypeError(f"predict takes a model, a weights file or an .onnx file, not {type(model).__name__}")
    return TorchRunner(model)


def is_onnx_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() == ".onnx"


def cached_onnx(model_or_file: ComposedModel | str | os.PathLike) -> tuple[Path, bool]:
    """The ONNX file for a model or a weights file, exported (and checked) on first use
    into ``$REGISTRY_CORE_HOME/onnx``; and whether this call exported it."""
    if isinstance(model_or_file, ComposedModel):
        name, digest = model_or_file.model_name or "model", _model_digest(model_or_file)
    elif not isinstance(model_or_file, str | os.PathLike):
        raise ExportError(f"the onnxruntime runtime needs a registry-core model, a weights file or an .onnx file, "
                          f"not {type(model_or_file).__name__}")
    else:
        source = Path(model_or_file)
        if not source.is_file():
            raise ExportError(f"{source}: no such weights file")
        name, digest = source.stem, _file_digest(source)
    path = home() / CACHE_FOLDER / f"{name}-{digest[:20]}.onnx"
    if path.is_file():
        return path, False
    export(model_or_file, path, format="onnx")
    return path, True


def _versions() -> bytes:
    return f"registry-core {__version__}, torch {torch.__version__}\n".encode()


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256(_versions())
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _model_digest(model: ComposedModel) -> str:
    """A digest of everything an export of ``model`` depends on: its name and options,
    its preprocessing and class names, and every tensor of its state."""
    digest = hashlib.sha256(_versions())
    described = [model.model_name, repr(sorted(getattr(model, "create_kwargs", {}).items())), model.data_config.to_json(),
                 json.dumps(None if model.class_names is None else list(model.class_names)), type(model).__name__]
    digest.update("\n".join(described).encode())
    for key, tensor in model.state_dict().items():
        value = tensor.detach().to("cpu").contiguous()
        digest.update(f"{key} {value.dtype} {tuple(value.shape)}\n".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
