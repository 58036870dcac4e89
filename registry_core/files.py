"""Where registry-core keeps files, and how it writes them without ever leaving half a file.

``atomic_write`` writes to a temporary file in the same folder, flushes and fsyncs it,
then renames it over the target: a crash leaves either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

ENV_HOME = "REGISTRY_CORE_HOME"


def home() -> Path:
    """``$REGISTRY_CORE_HOME``, or ``~/.cache/registry_core``."""
    configured = os.environ.get(ENV_HOME)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "registry_core"


@contextlib.contextmanager
def _replacing(path: str | os.PathLike) -> Iterator[str]:
    """A temporary sibling of ``path`` that replaces it if the block succeeds and is
    removed if it fails."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; on success it replaces ``path``."""
    with _replacing(path) as tmp, open(tmp, mode) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_path(path: str | os.PathLike, write) -> None:
    """For writers that want a file name (``write(tmp_path)``), e.g. safetensors' ``save_file``."""
    with _replacing(path) as tmp:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
