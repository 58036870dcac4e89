"""Reading and writing safetensors files: the one place the format is touched.

Reads are memory-mapped (no copy) and every failure (missing, empty, truncated, not
safetensors) is a ``WeightsError`` naming the file; writes are atomic.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from ..errors import WeightsError
from ..files import atomic_write_path


def write_safetensors(tensors: Mapping[str, Tensor], path: str | os.PathLike, metadata: Mapping[str, str]) -> None:
    """The one place safetensors files are written: temporary file, fsync, rename."""
    atomic_write_path(path, lambda tmp: save_file(dict(tensors), tmp, metadata=dict(metadata)))


@contextlib.contextmanager
def open_safetensors(path: str | os.PathLike) -> Iterator[Any]:
    """``safe_open`` whose every failure is a ``WeightsError`` naming the file."""
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
