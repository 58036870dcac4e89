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


KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from registry_core.files import atomic_write_path

def write_then_die(tmp):
    Path(tmp).write_bytes(b"half a file")
    os.kill(os.getpid(), signal.SIGKILL)

atomic_write_path(sys.argv[1], write_then_die)
"""


def _killed_write(target: Path) -> list[str]:
    """Run a writer that is killed mid-write; return the temporaries it left behind."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)], capture_output=True)
    assert done.returncode == -9
    return [name for name in os.listdir(target.parent) if name != target.name]


def test_a_killed_writers_temporary_is_removed_by_the_next_write_into_the_folder(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"the old file")
    left = _killed_write(tmp_path / "model.safetensors")
    assert len(left) == 1 and ".rc-tmp-" in left[0] and str(os.getpid()) not in left[0]
    assert _killed_write(tmp_path / "other.bin") and len(os.listdir(tmp_path)) == 2  # the second kill swept the first
    registry_core.save(registry_core.create("lenet5"), tmp_path / "lenet5.safetensors")
    assert sorted(os.listdir(tmp_path)) == ["lenet5.safetensors", "model.safetensors"]
    assert (tmp_path / "model.safetensors").read_bytes() == b"the old file"


def test_live_writers_other_hosts_and_foreign_files_are_left_alone(tmp_path):
    from registry_core.files import _host_tag, remove_stale_temporaries

    kept = [
        f".a.bin.rc-tmp-{_host_tag()}-{os.getpid()}-x1",  # this process is alive
        f".a.bin.rc-tmp-{'0' * 8 if _host_tag() != '0' * 8 else '1' * 8}-999999999-x2",  # another host's
        ".a.bin.rc-tmp-notahost-1-x3",
        "a.bin.rc-tmp-00000000-1-x4",  # not hidden: not ours
        ".a.bin.abc123.tmp",  # an older writer's name, which we cannot judge
    ]
    for name in kept:
        (tmp_path / name).write_bytes(b"")
    dead = tmp_path / f".a.bin.rc-tmp-{_host_tag()}-999999999-x5"
    dead.write_bytes(b"")
    assert remove_stale_temporaries(tmp_path) == [dead]
    assert sorted(os.listdir(tmp_path)) == sorted(kept)
