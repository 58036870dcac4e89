"""Weights files: safetensors in and out, with enough metadata to rebuild the model.

``save`` records how the model was created (name and create-time overrides), which
plugin gave it, its input contract and, for converted checkpoints, where the numbers
came from. Loading builds the model on the meta device and assigns tensors that are
memory-mapped from the file: no random initialisation thrown away, no second copy in
memory. Loading is strict and names every key that does not fit; a different
``num_classes`` (fresh head) or ``in_chans`` (adapted first convolution) is allowed
and reported with a warning.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from itertools import chain
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from .compose import ComposedModel, meta_device
from .errors import WeightsError
from .files import atomic_write_path

SHOWN_KEYS = 12  # how many key names an error lists per kind of mismatch


def save(model: ComposedModel, path: str | os.PathLike, *, metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``model``'s weights to a safetensors file, atomically.

    ``metadata`` adds string entries to the file's ``__metadata__`` (a trainer may
    record the epoch or the metric); it may not replace the keys ``save`` writes
    itself (see ``docs/weights.md``).
    """
    header = model_metadata(model)
    extra = dict(metadata or {})
    not_text = [repr(k) for k, v in extra.items() if not (isinstance(k, str) and isinstance(v, str))]
    if not_text:
        raise WeightsError(f"metadata must map strings to strings; not so for {', '.join(not_text)}")
    reserved = sorted(set(extra) & set(header))
    if reserved:
        raise WeightsError(f"metadata keys {', '.join(reserved)} are written by save() itself")
    state = model.state_dict()
    on_meta = [k for k, v in state.items() if v.is_meta]
    if on_meta:
        raise WeightsError(f"cannot save tensors that hold no data (meta device): {_names(on_meta)}")
    write_safetensors({k: v.detach().contiguous() for k, v in state.items()}, path, {**header, **extra})
    return Path(path)


def write_safetensors(tensors: Mapping[str, Tensor], path: str | os.PathLike, metadata: Mapping[str, str]) -> None:
    """The one place safetensors files are written: temporary file, fsync, rename."""
    atomic_write_path(path, lambda tmp: save_file(dict(tensors), tmp, metadata=dict(metadata)))


def model_metadata(model: ComposedModel) -> dict[str, str]:
    """What ``save`` records about ``model``: enough to rebuild it and to feed it."""
    from . import __version__
    from .plugins import default_host

    if not isinstance(model, ComposedModel) or not model.model_name:
        raise WeightsError("save() needs a model made by registry_core.create (it records the model's name)")
    provenance = default_host().registry.get("model", model.model_name).provenance
    meta = model.meta
    header = {
        "format": "pt",
        "registry_core": __version__,
        "model": model.model_name,
        "create_kwargs": _to_json(model.create_kwargs),
        "in_chans": str(meta.input_size[0]),
        "aux_heads": str(len(model.aux_heads)),
        "plugin": provenance.distribution or provenance.plugin,
        "plugin_version": provenance.version,
        "input_size": _to_json(meta.input_size),
        "mean": _to_json(meta.mean),
        "std": _to_json(meta.std),
        "interpolation": meta.interpolation,
        "crop_pct": str(meta.crop_pct),
    }
    if not model.features_only:
        header["num_classes"] = str(model.num_classes)
    return header


def _to_json(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True)
    except TypeError as exc:
        raise WeightsError(f"cannot record {value!r} in a weights file: {exc}") from None


def _from_json(value: Any) -> Any:
    """JSON has no tuples; options go back to the builders as tuples, as they were."""
    if isinstance(value, list):
        return tuple(_from_json(v) for v in value)
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    return value


@contextlib.contextmanager
def open_safetensors(path: str | os.PathLike) -> Iterator[Any]:
    """``safe_open`` whose every failure (missing, empty, truncated, not safetensors)
    is a ``WeightsError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    try:
        handle = safe_open(str(path), framework="pt")
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors file: {exc}") from None
    with handle as f:
        yield f


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file (strings, as stored)."""
    with open_safetensors(path) as f:
        return dict(sorted((f.metadata() or {}).items()))


def read_tensors(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Every tensor of a safetensors file, memory-mapped (no copy), and its metadata."""
    with open_safetensors(path) as f:
        try:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise WeightsError(f"{path}: cannot read its tensors: {exc}") from None


def load(path: str | os.PathLike, **overrides: Any) -> ComposedModel:
    """Rebuild the model a weights file was saved from, using its metadata alone, and
    load the weights. ``overrides`` replace recorded create options (e.g. ``num_classes``)."""
    header = read_metadata(path)
    if "model" not in header:
        raise WeightsError(f"{path} does not say which model it holds; use registry_core.create(name, weights=path)")
    return load_weights(header["model"], path, **overrides)


def load_weights(name: str, path: str | os.PathLike, **requested: Any) -> ComposedModel:
    """``create(name, weights=path, **requested)``: build on the meta device, assign the
    file's tensors strictly, then reset the head if another ``num_classes`` was asked for.

    Create options not in ``requested`` follow the file (its recorded options, class
    count and input channels), so the model is the one that was saved.
    """
    from .factory import create

    state, header = read_tensors(path)
    if header.get("model", name) != name:
        raise WeightsError(f"{path} holds weights for {header['model']!r}, not {name!r}; "
                           f"load it with registry_core.load(path) or create({header['model']!r}, weights=path)")
    recorded = _recorded_options(header, path)
    options = {**recorded, **requested}
    file_classes, file_chans = _header_int(header, "num_classes", path), _header_int(header, "in_chans", path)
    has_head = not options.get("features_only", False)
    if has_head and file_classes is not None:
        options["num_classes"] = file_classes
    if options.get("in_chans") is None and file_chans is not None:
        options["in_chans"] = file_chans
    notes: list[str] = []
    model = assign_weights(lambda: create(name, **options), state,
                           prepare=lambda m: notes.extend(_prepare_state(m, state, file_chans, path)),
                           on_error=_hint(name, recorded, path) if "create_kwargs" in header else "")
    wanted_classes = requested.get("num_classes")
    if has_head and wanted_classes is not None and wanted_classes != model.num_classes:
        notes.append(f"{path}: head reset for {wanted_classes} classes (the file has {model.num_classes}); "
                     "it is freshly initialised, everything else is loaded")
        model.reset_classifier(wanted_classes)
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=3)
    return model


def _recorded_options(header: Mapping[str, str], path) -> dict[str, Any]:
    try:
        recorded = _from_json(json.loads(header.get("create_kwargs", "{}")))
    except ValueError:
        recorded = None
    if not isinstance(recorded, dict):
        raise WeightsError(f"{path}: its create_kwargs metadata is not a JSON object")
    return recorded


def assign_weights(build: Callable[[], nn.Module], state: dict[str, Tensor], *,
                   prepare: Callable[[nn.Module], Any] | None = None, on_error: str = "") -> nn.Module:
    """``build()`` on the meta device, then make ``state``'s tensors its parameters
    (``assign=True``): nothing is initialised and nothing copied. Keys must match
    exactly; a mismatch is a ``WeightsError`` listing them. ``prepare(module)`` may
    adapt ``state`` to the freshly built module first.

    A module with non-persistent buffers (absent from any state dict) is built again
    for real, since their values come from its constructor.
    """
    with meta_device():
        module = build()
    if prepare is not None:
        prepare(module)
    expected = module.state_dict()
    problem = key_mismatches(expected, state)
    if problem:
        raise WeightsError(problem + on_error)
    state = {k: v if v.dtype == expected[k].dtype else v.to(expected[k].dtype) for k, v in state.items()}
    module.load_state_dict(state, strict=True, assign=True)
    if any(t.is_meta for t in chain(module.parameters(), module.buffers())):
        module = build()
        module.load_state_dict(state, strict=True)
    return module


def key_mismatches(expected: Mapping[str, Tensor], given: Mapping[str, Tensor]) -> str:
    """'' when ``given`` fits ``expected`` key for key and shape for shape; otherwise a
    message naming the missing, unexpected and mis-shaped keys."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    misshaped = [
        f"{k} (file {tuple(given[k].shape)}, model {tuple(expected[k].shape)})"
        for k in expected if k in given and given[k].shape != expected[k].shape
    ]
    parts = [f"{len(keys)} {what}: {_names(keys)}" for what, keys in
             (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)) if keys]
    return "weights do not fit the model; " + "; ".join(parts) if parts else ""


def _names(keys: list[str]) -> str:
    more = f" ... and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else ""
    return ", ".join(keys[:SHOWN_KEYS]) + more


def _hint(name: str, recorded: Mapping[str, Any], path) -> str:
    call = ", ".join([repr(name), *(f"{k}={v!r}" for k, v in recorded.items())])
    return f" (the file was saved from create({call}); pass the same options, or use registry_core.load({str(path)!r}))"


def _header_int(header: Mapping[str, str], key: str, path) -> int | None:
    if key not in header:
        return None
    try:
        return int(header[key])
    except ValueError:
        raise WeightsError(f"{path}: metadata {key}={header[key]!r} is not an integer") from None


def _prepare_state(model: ComposedModel, state: dict[str, Tensor], file_chans: int | None, path) -> list[str]:
    """Drop the head of a full model's file for ``features_only``; adapt the first
    convolution to another number of input channels."""
    notes = []
    if model.features_only:
        for key in [k for k in state if k.startswith(("head.", "aux_heads."))]:
            del state[key]
    want = model.meta.input_size[0]
    if file_chans is not None and file_chans != want:
        key, groups = _first_conv(model)
        weight = state.get(key)
        if weight is None or weight.dim() != 4 or weight.shape[1] != file_chans or groups != 1:
            raise WeightsError(f"{path}: cannot adapt {key} from {file_chans} to {want} input channels")
        state[key] = adapt_input_channels(weight, want)
        notes.append(f"{path}: {key} adapted from {file_chans} to {want} input channels")
    return notes


def _first_conv(model: ComposedModel) -> tuple[str, int]:
    for name, module in model.stem.named_modules():
        if isinstance(module, nn.Conv2d):
            return f"stem.{name}.weight", module.groups
    raise WeightsError(f"{model.model_name}: in_chans differs from the file, but its stem has no Conv2d to adapt")


def adapt_input_channels(weight: Tensor, in_chans: int) -> Tensor:
    """A first-convolution weight for ``in_chans`` inputs: summed over the file's
    channels for one (a grey image gives what the same image in colour gave), else the
    channels repeated and scaled so that the response to repeated inputs is unchanged."""
    source = weight.float()
    if in_chans == 1:
        adapted = source.sum(dim=1, keepdim=True)
    else:
        have = source.shape[1]
        adapted = source.repeat(1, math.ceil(in_chans / have), 1, 1)[:, :in_chans] * (have / in_chans)
    return adapted.to(weight.dtype).contiguous()
