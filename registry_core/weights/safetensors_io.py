"""Reading and writing safetensors files: the one place the format is touched.

Reads are memory-mapped (no copy), after ``validate.check_file_header`` has bounded the
header; every failure (missing, empty, truncated, not safetensors, hostile header) is a
``WeightsError`` naming the file; writes are atomic.
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

from ..errors import WeightsError, WriteError
from ..files import atomic_write_path
from .validate import check_file_header


def write_safetensors(tensors: Mapping[str, Tensor], path: str | os.PathLike, metadata: Mapping[str, str]) -> None:
    """The one place safetensors files are written: temporary file, fsync, rename."""
    def write(tmp: str) -> None:
        try:
            save_file(dict(tensors), tmp, metadata=dict(metadata))
        except SafetensorError as exc:  # a full disk arrives as the library's error, not an OSError
            raise WriteError(f"cannot write {path}: {exc}") from None

    atomic_write_path(path, write)


@contextlib.contextmanager
def open_safetensors(path: str | os.PathLike) -> Iterator[Any]:
    """``safe_open`` whose every failure is a ``WeightsError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: {'a folder, not a weights file' if path.is_dir() else 'no such weights file'}")
    if _written_by_torch_save(path):
        raise WeightsError(f"{path} is a PyTorch checkpoint (torch.save), not a safetensors file; "
                           f"`registry-core identify {path}` tells what it holds")
    try:
        check_file_header(path)  # ours first: bounded, and declared sizes checked
        handle = safe_open(str(path), framework="pt")
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors file: {exc}") from None
    with handle as f:
        yield f


def _written_by_torch_save(path: Path) -> bool:
    """Whether the file starts as ``torch.save`` writes: a zip archive, or (before
    PyTorch 1.6) a pickle, read as a header length that the file could not hold. (A
    safetensors file starts with its header's length; a zip's magic number read so is
    over the 64 MB we allow.)"""
    with open(path, "rb") as handle:
        start = handle.read(8)
    pickled = len(start) == 8 and start[0] == 0x80 and 2 <= start[1] <= 5
    return start[:4] == b"PK\x03\x04" or (pickled and int.from_bytes(start, "little") > path.stat().st_size - 8)


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
