"""Where registry-core keeps files, and how it writes them without ever leaving half a file.

``atomic_write`` writes to a temporary file in the same folder, flushes and fsyncs it,
then renames it over the target: a crash leaves either the old file or the new one.
A killed writer cannot remove its temporary file, so each one is named after the host and
process that writes it (``.NAME.rc-tmp-HOST-PID-XXXX``), and every write first removes
those of this host's writers that are no longer running: killed writes never pile up.
The file ends with the mode a plain ``open(path, "w")`` would give it (``0o666`` less
the umask), not the owner-only mode of a temporary file. Any failure to write is a
``WriteError`` naming the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import WriteError

ENV_HOME = "REGISTRY_CORE_HOME"
TEMP_MARK = ".rc-tmp-"
_TEMP_NAME = re.compile(r"^\..*\.rc-tmp-([0-9a-f]{8})-(\d+)-[^/]*$")


def home() -> Path:
    """``$REGISTRY_CORE_HOME``, or ``~/.cache/registry_core``."""
    configured = os.environ.get(ENV_HOME)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "registry_core"


def _umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere the only way to read it is to set it
    os.umask(mask)
    return mask


def refuse_folder(path: str | os.PathLike) -> None:
    """A file is about to be written at ``path``: say so early if a folder is in the way,
    or if the path cannot name a file at all (too long a name, say)."""
    try:
        is_dir = Path(path).is_dir()
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from None
    if is_dir:
        raise WriteError(f"cannot write {path}: it is a folder; give a file name inside it instead")


def _host_tag() -> str:
    """Eight hex digits naming this machine: process ids mean nothing on another host
    sharing the folder (a network home), so only this host's temporaries are judged."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _running(pid: int) -> bool:
    if pid <= 0:
        return True  # not a pid we wrote: leave it alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # alive but someone else's, or not a valid pid: never remove it
    return True


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that writers on this host, now dead, left in ``folder``;
    return what was removed. A live writer's file, another host's, or any file not named
    by ``atomic_write`` is never touched."""
    removed: list[Path] = []
    host = _host_tag()
    try:
        entries = list(os.scandir(str(folder)))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name) if TEMP_MARK in entry.name else None
        if match is None or match.group(1) != host or _running(int(match.group(2))):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def _replacing(path: str | os.PathLike) -> Iterator[str]:
    """A temporary sibling of ``path`` that replaces it if the block succeeds and is
    removed if it fails."""
    target = Path(path)
    refuse_folder(target)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(target.parent)
        # the target's name is cut so the temporary's name stays within the file system's limit
        prefix = f".{target.name[:120]}{TEMP_MARK}{_host_tag()}-{os.getpid()}-"
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=prefix)
        os.close(fd)
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp made it owner-only
        os.replace(tmp, target)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise WriteError(f"cannot write {target}: {exc.strerror or exc}") from exc
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
