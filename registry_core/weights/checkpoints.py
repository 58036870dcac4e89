"""Reading and writing other libraries' checkpoint files, without ever unpickling code.

A ``.safetensors`` file is read directly; a ``.pth``/``.pt``/``.bin``/``.ckpt`` or
``.pth.tar`` file only through ``torch.load(weights_only=True)``, which refuses anything
but tensors, plain containers and the few harmless types in ``SAFE_GLOBALS``. What the
file holds is unwrapped by ``unwrap.py``. Every failure is a ``WeightsError`` naming the
file.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from ..errors import WeightsError
from ..files import atomic_write
from .safetensors_io import read_tensors, write_safetensors
from .unwrap import ForeignCheckpoint, unwrap
from .validate import shown

PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".tar")
"""Read through torch.load; ``.tar`` is timm's ``checkpoint-N.pth.tar``/``model_best.pth.tar``."""
WRITE_SUFFIXES = (".pth", ".pt", ".bin")

SAFE_GLOBALS = (argparse.Namespace,)
"""The types training checkpoints carry that torch's weights-only loader refuses by
default, allowed while a checkpoint is read and nowhere else: the ``argparse.Namespace``
timm's ``train.py`` and torchvision's reference scripts save as ``args``. Loading one
creates an empty Namespace and sets attributes on it; its values must themselves be
data the loader allows (a function or class inside is refused). Lightning saves its
hyper-parameters as a plain dict, its loop and callback states as plain data, so it
needs nothing more. Anything else (a pickled module, a custom class) is refused."""

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_TORCH_ADVICE = ("Weights only load failed", "(1)", "(2)", "Check the documentation", "Please file an issue",
                 "In PyTorch 2.6", "Re-running")


def read_foreign(path: str | os.PathLike, *, ema: bool = False) -> ForeignCheckpoint:
    """The weights in a foreign checkpoint file, on the CPU, unwrapped (see ``unwrap``);
    ``ema=True`` takes the file's EMA copy."""
    path = Path(path)
    state: object
    if path.suffix.lower() == ".safetensors":
        state = read_tensors(path)[0]
    elif is_pickle_name(path):
        state = _torch_load(path)
    else:
        raise WeightsError(f"{path}: unknown checkpoint type {shown(path.suffix or '(no suffix)')}; expected "
                           f".safetensors, {', '.join(s for s in PICKLE_SUFFIXES if s != '.tar')} or .pth.tar")
    return unwrap(state, path, ema=ema)


def read_checkpoint(path: str | os.PathLike, *, ema: bool = False) -> dict[str, Tensor]:
    """The state dict in a foreign checkpoint file (``read_foreign(...).state``)."""
    return read_foreign(path, ema=ema).state


def is_pickle_name(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named like a file ``torch.save`` wrote."""
    return Path(path).suffix.lower() in PICKLE_SUFFIXES


def _torch_load(path: Path) -> object:
    if not path.is_file():
        raise WeightsError(f"{path}: {'a folder, not a checkpoint file' if path.is_dir() else 'no such checkpoint file'}")
    try:
        with torch.serialization.safe_globals(list(SAFE_GLOBALS)), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")  # the refusal, if any, says more
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any parse failure of an untrusted file is the file's fault
        raise WeightsError(f"{path} {_refusal(exc)}") from None


def _refusal(exc: Exception) -> str:
    """Why torch refused the file, in one line: the globals it would not load, or the
    first line of its message that is not advice to load the file unsafely."""
    text = _ANSI.sub("", str(exc))
    names = sorted(set(_GLOBAL.findall(text)))
    if names:
        pickled = any(n.rsplit(".", 1)[-1][:1].isupper() for n in names)
        hint = "; if it is a whole pickled model, save its state_dict() instead" if pickled else ""
        return (f"refers to {shown(', '.join(names), 200)}, which weights-only loading does not allow "
                f"(nothing in it was executed){hint}")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith(_TORCH_ADVICE)]
    cause = lines[0] if lines else type(exc).__name__
    return f"is not a readable weights-only PyTorch checkpoint (nothing in it was executed): {shown(cause, 200)}"


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
    elif path.suffix.lower() in WRITE_SUFFIXES:
        with atomic_write(path) as handle:
            torch.save(tensors, handle)
    else:
        raise WeightsError(f"{path}: write .safetensors or one of {', '.join(WRITE_SUFFIXES)}")
