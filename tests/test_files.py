"""Atomic writes: a failure mid-write leaves the previous file intact and no debris; a
written file has the mode the umask gives any new file; a path that cannot be written is
a ``WriteError``."""

import os
import stat
from pathlib import Path

import pytest

import registry_core
from registry_core import RegistryCoreError, WriteError
from registry_core.files import atomic_write, atomic_write_path, home
from registry_core.scaffold import write_plugin


@pytest.fixture(params=[0o022, 0o077], ids=["umask-022", "umask-077"])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_written_files_get_the_umask_s_mode(tmp_path, umask):
    expected = 0o666 & ~umask
    with atomic_write(tmp_path / "notes.txt", "w") as handle:
        handle.write("text")
    atomic_write_path(tmp_path / "weights.bin", lambda path: Path(path).write_bytes(b"data"))
    with atomic_write(tmp_path / "notes.txt", "w") as handle:  # replacing keeps it so
        handle.write("again")
    model = registry_core.create("lenet5")
    registry_core.save(model, tmp_path / "lenet5.safetensors")
    root = write_plugin("registry-mode-check", tmp_path / "plugin")
    written = [tmp_path / "notes.txt", tmp_path / "weights.bin", tmp_path / "lenet5.safetensors",
               *(p for p in root.rglob("*") if p.is_file())]
    assert len(written) == 7 and {str(p): _mode(p) for p in written} == {str(p): expected for p in written}


def test_a_path_that_cannot_be_written_is_a_write_error(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("mine")
    for target in (tmp_path / "folder", tmp_path / "file" / "inside.txt"):
        with pytest.raises(WriteError, match=f"cannot write {target}") as caught, atomic_write(target, "w") as handle:
            handle.write("lost")
        assert isinstance(caught.value, OSError) and isinstance(caught.value, RegistryCoreError)
    with pytest.raises(WriteError, match="it is a folder"):
        registry_core.save(registry_core.create("lenet5"), tmp_path / "folder")
    assert os.listdir(tmp_path / "folder") == [] and (tmp_path / "file").read_text() == "mine"


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

    with pytest.raises(WriteError, match="cannot write .*weights.bin: disk full"):
        atomic_write_path(target, failing)
    assert target.read_bytes() == b"one" and os.listdir(tmp_path) == ["weights.bin"]


def test_home_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("REGISTRY_CORE_HOME", str(tmp_path / "store"))
    assert home() == tmp_path / "store"
    monkeypatch.delenv("REGISTRY_CORE_HOME")
    assert home() == Path.home() / ".cache" / "registry_core"
