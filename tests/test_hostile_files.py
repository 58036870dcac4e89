"""Hostile and odd files fed to every path that reads one.

Each kind of bad file (safetensors files, and training checkpoints for the readers of
foreign ones) is written for the tiny test model and handed to each reader
(``load``, ``create(weights=)``, ``pretrained=True`` from the store and from a library
cache, ``info FILE``, ``convert --from``/``--to``, ``eval --weights``, ``train
--resume``). Every case ends in our own error, on one line (exit code 2 on the
command line), or in the documented acceptance; nothing in a file ever runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from components import make_plugin
from safetensors.torch import save_file

import registry_core
from registry_core import Converter, RegistryCoreError, create, hookimpl, load, save
from registry_core.cli import main
from registry_core.factory import pretrained
from registry_core.factory.conversion import convert_from
from registry_core.factory.store import store_path
from registry_core.training.evaluate import evaluate
from registry_core.training.state import STATE_FILE

MODEL = "tiny"
PATHS = ("load", "create", "store", "library_cache", "info", "convert_from", "convert_to", "eval", "resume")
ALL = frozenset(PATHS)
TENSOR_READERS = ALL - {"info"}  # info shows the metadata only
# readers that rebuild from our metadata; a foreign checkpoint's (convert --from, a library cache) is not used
OUR_FILE_READERS = ALL - {"convert_from", "library_cache", "resume"}


class CreatesAFile:
    """Unpickling this would run code: it creates the file ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


class IdentityConverters:
    """A converter of the tiny model whose layout is ours, so a bad tensor reaches the
    strict load unchanged."""

    @hookimpl
    def register_converters(self, register):
        register(Converter("mylib", MODEL, dict, dict))


@pytest.fixture
def host(fresh_host):
    fresh_host(make_plugin())
    fresh_host(IdentityConverters(), "mylib-converters")


def _good(tmp: Path) -> tuple[dict, dict]:
    torch.manual_seed(0)
    save(create(MODEL), tmp / "good.safetensors")
    from safetensors.torch import load_file

    return load_file(tmp / "good.safetensors"), registry_core.read_metadata(tmp / "good.safetensors")


def _write(path: Path, state: dict, header: dict) -> Path:
    save_file({k: v.contiguous() for k, v in state.items()}, path, metadata=header)
    return path


def _rewrite_header(path: Path, out: Path, change: Callable[[dict], None]) -> Path:
    raw = path.read_bytes()
    length = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + length])
    change(header)
    text = json.dumps(header).encode()
    out.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + length:])
    return out


def _first_float(state: dict) -> str:
    return next(k for k, v in state.items() if v.is_floating_point())


def _retyped(state: dict, dtype: torch.dtype) -> dict:
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}


def _poisoned(state: dict, value: float) -> dict:
    state = {k: v.clone() for k, v in state.items()}
    state[_first_float(state)].view(-1)[0] = value
    return state


def _misshaped(state: dict) -> dict:
    state, key = dict(state), _first_float(state)
    state[key] = torch.zeros(state[key].shape[0] + 1, *state[key].shape[1:])
    return state


def _as_f64(header: dict) -> None:
    for key, entry in header.items():
        if key != "__metadata__" and entry["dtype"] == "F32":
            entry["dtype"] = "F64"


def _offsets_past_end(header: dict) -> None:
    entry = next(v for k, v in header.items() if k != "__metadata__")
    entry["data_offsets"] = [entry["data_offsets"][0], entry["data_offsets"][1] + 10**9]


def _symlink_loop(path: Path) -> Path:
    os.symlink(path.with_suffix(".other"), path)
    os.symlink(path, path.with_suffix(".other"))
    return path


def _pickle(path: Path, victim: Path) -> Path:
    path.write_bytes(pickle.dumps({"w": torch.zeros(1), "x": CreatesAFile(victim)}))
    return path


def _training_checkpoint(path: Path, **entries) -> Path:
    """A checkpoint as a training script writes it (timm's train.py names them ``*.pth.tar``)."""
    target = path.with_name(path.name.replace(".safetensors", ".pth.tar"))
    torch.save({"epoch": 3, "version": 2, **entries}, target)
    return target


def _nested_containers(path: Path, depth: int) -> Path:
    """``{"state_dict": {"state_dict": ...}}`` ``depth`` levels deep, written opcode by
    opcode into torch.save's zip layout (pickling it would exhaust Python's recursion)."""
    target = path.with_name(path.name.replace(".safetensors", ".pth"))
    torch.save({}, target)
    key = b"state_dict"
    entry = b"X" + len(key).to_bytes(4, "little") + key
    data = b"\x80\x02" + (b"}" + entry) * depth + b"}" + b"s" * depth + b"."
    with zipfile.ZipFile(target) as original:
        parts = {name: original.read(name) for name in original.namelist()}
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as rewritten:
        for name, content in parts.items():
            rewritten.writestr(name, data if name.endswith("data.pkl") else content)
    return target


def _meta(key: str, value: str):
    return lambda tmp, path, state, header: _write(path, state, {**header, key: value})


def _options(text: str):
    return _meta("create_kwargs", text)


def _raw(data: bytes):
    return lambda tmp, path, state, header: (path.write_bytes(data), path)[1]


# kind -> (how to write it from (tmp, path, good state, good header), where it must be refused)
KINDS: dict[str, tuple[Callable[..., Path], frozenset]] = {
    "pickle-with-code": (lambda tmp, p, s, h: _pickle(p, tmp / "pwned"), ALL),
    "empty": (_raw(b""), ALL),
    "random-bytes": (lambda tmp, p, s, h: (p.write_bytes(os.urandom(4096)), p)[1], ALL),
    "truncated": (lambda tmp, p, s, h: (p.write_bytes((tmp / "good.safetensors").read_bytes()[:-100]), p)[1], ALL),
    "header-cut-short": (lambda tmp, p, s, h: (p.write_bytes((tmp / "good.safetensors").read_bytes()[:40]), p)[1], ALL),
    "header-length-bomb": (_raw(struct.pack("<Q", 2**62) + b"{}"), ALL),
    "header-not-json": (_raw(struct.pack("<Q", 8) + b"not json"), ALL),
    "header-not-object": (_raw(struct.pack("<Q", 2) + b"[]"), ALL),
    "header-not-utf8": (_raw(struct.pack("<Q", 4) + b"\xff\xfe\xfd\xfc"), ALL),
    "header-deeply-nested": (lambda tmp, p, s, h: (p.write_bytes(struct.pack("<Q", 200_000) + b"[" * 100_000 + b"]" * 100_000), p)[1], ALL),
    "f64-declared-for-f32-bytes": (lambda tmp, p, s, h: _rewrite_header(tmp / "good.safetensors", p, _as_f64), ALL),
    "offsets-past-the-end": (lambda tmp, p, s, h: _rewrite_header(tmp / "good.safetensors", p, _offsets_past_end), ALL),
    "directory": (lambda tmp, p, s, h: (p.mkdir(), p)[1], ALL),
    "symlink-loop": (lambda tmp, p, s, h: _symlink_loop(p), ALL),
    "missing": (lambda tmp, p, s, h: p, ALL),
    "wrong-shape": (lambda tmp, p, s, h: _write(p, _misshaped(s), h), TENSOR_READERS),
    "float-as-int8": (lambda tmp, p, s, h: _write(p, _retyped(s, torch.int8), h), TENSOR_READERS),
    "float-as-bool": (lambda tmp, p, s, h: _write(p, _retyped(s, torch.bool), h), TENSOR_READERS),
    "nan": (lambda tmp, p, s, h: _write(p, _poisoned(s, math.nan), h), TENSOR_READERS),
    "inf": (lambda tmp, p, s, h: _write(p, _poisoned(s, math.inf), h), TENSOR_READERS),
    "create-kwargs-deeply-nested": (_options("[" * 100_000 + "]" * 100_000), ALL - {"resume"}),
    "create-kwargs-not-json": (_options("{oops"), OUR_FILE_READERS - {"info"}),
    "in-chans-as-text": (_options('{"in_chans": "3"}'), OUR_FILE_READERS - {"info"}),
    "in-chans-fractional": (_options('{"in_chans": 1.5}'), OUR_FILE_READERS - {"info"}),
    "num-classes-fractional": (_options('{"num_classes": 2.5}'), OUR_FILE_READERS - {"info"}),
    "in-chans-amplified": (_options('{"in_chans": 3000000}'), OUR_FILE_READERS - {"info"}),
    "option-holding-code": (_options(json.dumps({"width": "__import__('os').system('touch pwned')"})), OUR_FILE_READERS - {"info"}),
    "header-in-chans-amplified": (_meta("in_chans", "3000000"), ALL - {"resume"}),
    "header-num-classes-negative": (_meta("num_classes", "-4"), ALL - {"resume"}),
    "model-name-20mb": (_meta("model", "x" * 20_000_000), ALL - {"resume"}),
    "model-name-with-escapes": (_meta("model", "tiny\x1b[2J\n"), ALL - {"resume"}),
    "image-size-zero": (_meta("image_size", "0"), ALL - {"resume"}),
    "image-size-negative": (_meta("image_size", "-5"), ALL - {"resume"}),
    "image-size-60000": (_meta("image_size", "60000"), ALL - {"resume"}),
    "key-of-100kb": (_meta("k" * 100_000, "v"), ALL - {"resume"}),
    "too-many-keys": (lambda tmp, p, s, h: _write(p, s, {**h, **{f"k{i}": "v" for i in range(5000)}}), ALL - {"resume"}),
    # training checkpoints (read with torch.load(weights_only=True) and argparse.Namespace allowed) gone wrong
    "training-args-with-code": (lambda tmp, p, s, h: _training_checkpoint(
        p, state_dict=s, args=argparse.Namespace(model=MODEL, hook=CreatesAFile(tmp / "pwned"))), ALL),
    "training-whole-pickled-model": (lambda tmp, p, s, h: _training_checkpoint(p, model=create(MODEL)), ALL),
    "training-state-dict-a-list": (lambda tmp, p, s, h: _training_checkpoint(p, state_dict=list(s.values())), ALL),
    "training-state-dict-of-text": (lambda tmp, p, s, h: _training_checkpoint(p, model={k: "weights" for k in s}), ALL),
    "training-containers-nested-50k-deep": (lambda tmp, p, s, h: _nested_containers(p, 50_000), ALL),
    # documented acceptance: these load (eval then stops at the unknown dataset); `info` shows text escaped
    "valid-file": (lambda tmp, p, s, h: _write(p, s, h), frozenset({"eval", "resume"})),
    "ansi-escapes-in-metadata": (_meta("note", "\x1b[31mred\x1b[0m\nsecond line\x07"), frozenset({"eval", "resume"})),
    # a foreign checkpoint loads where foreign checkpoints are read; `info` and `--to` read our files only
    "valid-training-checkpoint": (lambda tmp, p, s, h: _training_checkpoint(
        p, state_dict={f"module.{k}": v for k, v in s.items()}, args=argparse.Namespace(model=MODEL, lr=0.1)),
        frozenset({"info", "convert_to", "store", "eval", "resume"})),
}
ACCEPTED = ("valid-file", "ansi-escapes-in-metadata", "valid-training-checkpoint")


def _read(path_kind: str, bad: Path, tmp: Path, monkeypatch, capsys) -> None:
    """Feed ``bad`` to one reader; raises what the reader raises."""
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    if path_kind == "load":
        load(bad)
    elif path_kind == "create":
        create(MODEL, weights=bad)
    elif path_kind == "store":
        store = store_path(MODEL)
        store.parent.mkdir(parents=True, exist_ok=True)
        if bad.exists() or bad.is_symlink():
            os.replace(bad, store)
        create(MODEL, pretrained=True)
    elif path_kind == "library_cache":
        monkeypatch.setattr(pretrained, "cached_checkpoint", lambda converter: bad)
        create(MODEL, pretrained=True)
    elif path_kind == "info":
        code = main(["info", str(bad)])
        captured = capsys.readouterr()
        assert "\x1b" not in captured.out + captured.err and all(len(line) < 3000 for line in captured.out.splitlines())
        if code:
            assert code == 2 and captured.err.count("\n") == 1, captured.err
            raise RegistryCoreError(captured.err)
    elif path_kind == "convert_from":
        convert_from("mylib", MODEL, bad, out / "converted.safetensors", verify=False)
    elif path_kind == "convert_to":
        code = main(["convert", "--to", "mylib", "--model", MODEL, "--checkpoint", str(bad),
                     "--out", str(out / "exported.pth"), "--no-verify"])
        err = capsys.readouterr().err
        if code:
            assert code == 2 and err.startswith("registry-core: error:") and err.count("\n") == 1, err
            raise RegistryCoreError(err)
    elif path_kind == "eval":
        evaluate(bad, "no-such-dataset")
    elif path_kind == "resume":
        run = tmp / "run"
        run.mkdir(exist_ok=True)
        if bad.exists() or bad.is_symlink():
            os.replace(bad, run / STATE_FILE)
        code = main(["train", "--resume", str(run)])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, err
        raise RegistryCoreError(err)


CASES = [(kind, path) for kind in KINDS for path in PATHS]


@pytest.mark.parametrize(("kind", "reader"), CASES, ids=[f"{k}-{p}" for k, p in CASES])
def test_a_hostile_file_is_our_error_or_the_documented_acceptance(kind, reader, host, tmp_path, monkeypatch, capsys):
    state, header = _good(tmp_path)
    make, refused_by = KINDS[kind]
    bad = make(tmp_path, tmp_path / f"bad-{kind}.safetensors", state, header)
    try:
        with _no_error_warnings():
            _read(reader, bad, tmp_path, monkeypatch, capsys)
    except RegistryCoreError as exc:
        message = str(exc).strip()
        assert "\n" not in message and "\x1b" not in message and len(message) < 2000, message
        outcome = "refused"
    else:
        outcome = "accepted"
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    if reader in refused_by:
        assert outcome == "refused", f"{kind} was accepted by {reader}"
    elif kind in ACCEPTED:
        assert outcome == "accepted", f"{kind} was refused by {reader}"


class _no_error_warnings:
    """Warnings are allowed (a cast is reported); only our errors end a read."""

    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)
        return False


def test_the_matrix_covers_every_kind_on_every_reader():
    assert len(CASES) == len(KINDS) * len(PATHS) and len(PATHS) == 9
    assert sum(len(refused) for _, refused in KINDS.values()) >= 280


def test_non_finite_weights_load_when_allowed(host, tmp_path):
    state, header = _good(tmp_path)
    bad = _write(tmp_path / "nan.safetensors", _poisoned(state, math.nan), header)
    assert load(bad, allow_non_finite=True).state_dict()[_first_float(state)].isnan().any()
    assert create(MODEL, weights=bad, allow_non_finite=True) is not None
    out = tmp_path / "exported.pth"
    assert main(["convert", "--to", "mylib", "--model", MODEL, "--checkpoint", str(bad), "--out", str(out),
                 "--no-verify", "--allow-non-finite"]) == 0


def test_a_float_file_of_another_precision_is_cast_with_a_warning(host, tmp_path):
    state, header = _good(tmp_path)
    half = _write(tmp_path / "half.safetensors", _retyped(state, torch.float16), header)
    with pytest.warns(UserWarning, match="cast from float16 to float32"):
        model = load(half)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_info_escapes_terminal_control_and_keeps_lines_short(host, tmp_path, capsys):
    state, header = _good(tmp_path)
    path = _write(tmp_path / "ansi.safetensors", state, {**header, "note": "\x1b[31mred\x1b[0m\nnext"})
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[31mred" in out and "\\nnext" in out
    assert all(len(line) < 3000 for line in out.splitlines())


def test_out_of_range_options_are_refused_before_building(host):
    from registry_core import InvalidOverrideError

    for options in ({"in_chans": 3_000_000}, {"in_chans": "3"}, {"num_classes": 2.5}, {"num_classes": -1}):
        with pytest.raises(InvalidOverrideError):
            create(MODEL, **options)
    with pytest.raises(RegistryCoreError, match="must be a name"):
        create("x" * 20_000_000)


# ---- crash safety of writes -----------------------------------------------------------------

KILLED_SAVE = """
import sys, time, pathlib
import safetensors.torch as st
import registry_core
from registry_core.weights import safetensors_io

def half_then_hang(tensors, path, metadata=None):
    pathlib.Path(path).write_bytes(b"partial")  # a part of the file, then the process dies
    pathlib.Path(sys.argv[2]).touch()
    time.sleep(600)

safetensors_io.save_file = half_then_hang
registry_core.save(registry_core.create("lenet5", num_classes=3), sys.argv[1])
"""


def test_a_save_killed_midway_leaves_the_previous_file(tmp_path):
    import subprocess
    import sys
    import time

    target, started = tmp_path / "lenet5.safetensors", tmp_path / "started"
    torch.manual_seed(0)
    before = create("lenet5")
    save(before, target)
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SAVE, str(target), str(started)])
    try:
        while not started.exists() and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, "the saving process ended before it was killed"
    finally:
        proc.kill()
        proc.wait()
    after = load(target)
    assert after.num_classes == 10
    assert all(torch.equal(a, b) for a, b in zip(before.state_dict().values(), after.state_dict().values()))


def test_a_full_disk_is_a_write_error_and_keeps_the_previous_file(tmp_path):
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        target = mount / "lenet5.safetensors"
        target.write_bytes(b"previous")
        with pytest.raises(registry_core.WriteError, match="lenet5.safetensors"):
            save(create("lenet5"), target)  # ~250 KB into 64 KB
        assert target.read_bytes() == b"previous" and [p.name for p in mount.iterdir()] == [target.name]
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_read_only_destination_is_a_write_error(tmp_path):
    import subprocess

    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    mounted = os.access(folder, os.W_OK) and not subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], capture_output=True).returncode
    try:
        if os.access(folder, os.W_OK) and not mounted:
            pytest.skip("this user writes into read-only folders and cannot mount a read-only one")
        with pytest.raises(registry_core.WriteError, match="cannot write"):
            save(create("lenet5"), folder / "lenet5.safetensors")
        assert not any(folder.iterdir())
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=False)
        folder.chmod(0o755)


@pytest.mark.parametrize("size", ["0", "-5", "60000"])
def test_eval_refuses_an_image_size_out_of_range(tmp_path, capsys, size):
    path = tmp_path / "lenet5.safetensors"
    save(create("lenet5", in_chans=3), path)
    assert main(["eval", "--weights", str(path), "--dataset", "fake", "--image-size", size]) == 2
    err = capsys.readouterr().err
    assert "image_size" in err and err.count("\n") == 1
