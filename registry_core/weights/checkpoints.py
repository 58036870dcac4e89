"""Reading and writing other libraries' checkpoint files, without ever unpickling code.

A ``.safetensors`` file is read directly; a ``.pth``/``.pt``/``.bin`` file only through
``torch.load(weights_only=True)``, which refuses anything but tensors and plain
containers. Training checkpoints are unwrapped (``state_dict``/``model`` entries) and
wrapper prefixes (``module.`` from DataParallel, ``_orig_mod.`` from torch.compile)
removed. Every failure is a ``WeightsError`` naming the file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from ..errors import WeightsError
from ..files import atomic_write
from .safetensors_io import read_tensors, write_safetensors

PICKLE_SUFFIXES = (".pth", ".pt", ".bin")
NESTED_KEYS = ("state_dict", "model", "model_state_dict")
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def read_checkpoint(path: str | os.PathLike) -> dict[str, Tensor]:
    """The state dict in a foreign checkpoint file, on the CPU."""
    path = Path(path)
    suffix = path.suffix.lower()
    state: object
    if suffix == ".safetensors":
        state = read_tensors(path)[0]
    elif suffix in PICKLE_SUFFIXES:
        state = _torch_load(path)
    else:
        raise WeightsError(f"{path}: unknown checkpoint type {suffix or '(no suffix)'!r}; "
                           f"expected .safetensors, {', '.join(PICKLE_SUFFIXES)}")
    return strip_wrapper_prefixes(_unwrap(state, path))


def _torch_load(path: Path) -> object:
    if not path.is_file():
        raise WeightsError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any parse failure of an untrusted file is the file's fault
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path} is not a readable weights-only PyTorch checkpoint "
                           f"(nothing in it was executed): {cause}") from None


def _unwrap(obj: object, path: Path) -> dict[str, Tensor]:
    while isinstance(obj, Mapping) and not _all_tensors(obj):
        inner = next((obj[k] for k in NESTED_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(f"{path} holds {'an empty mapping' if isinstance(obj, Mapping) else type(obj).__name__}, not a state dict")
    bad = [f"{k!r} ({type(v).__name__})" for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise WeightsError(f"{path} is not a state dict: {', '.join(bad[:5])} {'are' if len(bad) > 1 else 'is'} not a tensor")
    return dict(obj)


def _all_tensors(obj: Mapping) -> bool:
    return all(isinstance(v, Tensor) for v in obj.values())


def strip_wrapper_prefixes(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Remove ``module.``/``_orig_mod.`` when every key carries it (in any nesting)."""
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if state and all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state


def sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_checkpoint(state: Mapping[str, Tensor], path: str | os.PathLike, metadata: Mapping[str, str]) -> None:
    """Write a state dict for another library: safetensors (with ``metadata``) or,
    for ``.pth``/``.pt``/``.bin``, ``torch.save`` (loadable with ``weights_only=True``)."""
    path = Path(path)
    # Own storage per tensor: a converter may return views sharing one storage.
    tensors = {k: v.detach().contiguous().clone() for k, v in state.items()}
    if path.suffix.lower() == ".safetensors":
        write_safetensors(tensors, path, {"format": "pt", **metadata})
    elif path.suffix.lower() in PICKLE_SUFFIXES:
        with atomic_write(path) as handle:
            torch.save(tensors, handle)
    else:
        raise WeightsError(f"{path}: write .safetensors or one of {', '.join(PICKLE_SUFFIXES)}")
