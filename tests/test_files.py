"""Atomic writes: a failure mid-write leaves the previous file intact and no debris."""

import os
from pathlib import Path

import pytest

from registry_core.files import atomic_write, atomic_write_path, home


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "sub" / "notes.txt"
    with atomic_write(target, "w") as handle:
        handle.write("first")
    with pytest.raises(RuntimeError), atomic_write(target, "w") as handle:
        handle.write("half of the second")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "first"
    assert os.listdir(target.parent) == ["notes.txt"]


def test_atomic_write_path_for_writers_that_take_a_file_name(tmp_path):
    target = tmp_path / "weights.bin"
    atomic_write_path(target, lambda path: Path(path).write_bytes(b"one"))

    def failing(path):
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write_path(target, failing)
    assert target.read_bytes() == b"one" and os.listdir(tmp_path) == ["weights.bin"]


def test_home_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("REGISTRY_CORE_HOME", str(tmp_path / "store"))
    assert home() == tmp_path / "store"
    monkeypatch.delenv("REGISTRY_CORE_HOME")
    assert home() == Path.home() / ".cache" / "registry_core"
