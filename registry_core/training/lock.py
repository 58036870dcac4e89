"""One run per output folder.

A run holds ``OUT/train.lock`` while it writes the folder: a JSON record of its process
id, host, start time and command, created with ``O_CREAT | O_EXCL`` so that of two runs
starting together exactly one gets it. The other is refused with the holder named. A
lock whose process is gone (killed, or its machine rebooted) is stale and is taken over:
the taker renames it aside, checks that what it moved is the very file it judged stale
(another taker may have replaced it with a live lock meanwhile; that one is put back), and
then creates its own. A lock from another host cannot be checked, so it counts as live.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import TrainingError

LOCK_FILE = "train.lock"
STATE_FILE = "trainer_state.safetensors"  # a folder holding one holds a run
YOUNG_SECONDS = 10.0  # an unreadable lock younger than this is still being written


def refuse_existing_run(out: str | None, how_to_resume: str) -> None:
    """A folder that holds a run is continued, never trained over; ``how_to_resume`` is
    the caller's own way of saying so (a keyword in Python, an option on the CLI)."""
    if out and (Path(out) / STATE_FILE).exists():
        raise TrainingError(f"{out} already holds a run; continue it with {how_to_resume} or choose another folder")


def _process_start(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, Linux), to tell it from a later process
    given the same id; ``None`` where unknown. A zombie counts as gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return -1 if fields[0] == "Z" else int(fields[19])


def _alive(holder: dict[str, Any]) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # another machine's process cannot be checked from here
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process, alive
        pass
    started = _process_start(pid)
    return started != -1 and (started is None or holder.get("process_start") in (None, started))


class RunLock:
    """``with RunLock(folder):`` holds the folder's lock for the block."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                                  "process_start": _process_start(os.getpid()), "command": " ".join(sys.argv)[:500]})
        self.held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, taking over a stale one; a live holder is a ``TrainingError`` naming it."""
        for _ in range(5):
            if self._create():
                self.held = True
                return
            found = self._read()
            if found is None:
                continue  # it went away: try again
            holder, identity = found
            if holder is not None and _alive(holder):
                raise TrainingError(f"{self.folder} is in use by another run: pid {holder.get('pid')} on "
                                    f"{holder.get('host')}, started {holder.get('started')}; wait for it to end or "
                                    f"choose another folder (if that run is gone, delete {self.path})")
            if holder is None and time.time() - identity[2] < YOUNG_SECONDS:
                raise TrainingError(f"{self.folder} is in use by a run that is starting; wait for it or choose another folder")
            self._take_over(identity)
        raise TrainingError(f"could not lock {self.folder}: other runs keep taking {self.path}")

    def release(self) -> None:
        """Remove the lock if it is still this run's."""
        if self.held:
            self.held = False
            with contextlib.suppress(OSError):
                if self.path.read_text() == self.record:
                    self.path.unlink()

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        except OSError as exc:
            raise TrainingError(f"cannot write to output folder {self.folder}: {exc.strerror or exc}") from None
        with os.fdopen(fd, "w") as handle:
            handle.write(self.record)
            handle.flush()
            os.fsync(handle.fileno())
        return True

    def _read(self) -> tuple[dict[str, Any] | None, tuple[int, str, float]] | None:
        """``(holder or None if unreadable, (inode, text, mtime))``, or ``None`` if there is no lock."""
        try:
            with open(self.path) as handle:
                stat, text = os.fstat(handle.fileno()), handle.read()
        except FileNotFoundError:
            return None
        try:
            holder = json.loads(text)
        except ValueError:
            holder = None
        return (holder if isinstance(holder, dict) else None), (stat.st_ino, text, stat.st_mtime)

    def _take_over(self, identity: tuple[int, str, float]) -> None:
        """Move the stale lock aside; put back whatever else was moved instead."""
        aside = self.path.with_name(f"{LOCK_FILE}.stale-{os.getpid()}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        try:
            if (os.stat(aside).st_ino, aside.read_text()) != identity[:2]:
                with contextlib.suppress(OSError):  # a third run's lock may be there by now
                    os.link(aside, self.path)
        finally:
            aside.unlink()
