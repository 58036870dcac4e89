"""Hostile and mistaken inputs to the trainer: tampered trainer states, out-of-range
options, and the refusals made before torch is imported."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from registry_core import list_models
from registry_core.cli import main
from registry_core.training.state import STATE_FILE
from registry_core.weights.safetensors_io import read_tensors, write_safetensors

TINY = {"train_size": 16, "val_size": 8, "channels": 1, "image_size": 32}


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """One real run of a single step, saved once; each test tampers with a copy."""
    out = tmp_path_factory.mktemp("run") / "run"
    code = main(["train", "--model", "lenet5", "--dataset", "fake", "--data-opt", f"train_size={TINY['train_size']}",
                 "--data-opt", f"val_size={TINY['val_size']}", "--data-opt", "channels=1", "--data-opt", "image_size=32",
                 "--batch-size", "8", "--max-steps", "1", "--workers", "0", "--out", str(out)])
    assert code == 0 and (out / STATE_FILE).is_file()
    return out


def _tamper(source, target, edit_tensors=None, edit_document=None, raw_state=None):
    shutil.copytree(source, target)
    path = target / STATE_FILE
    mapped, metadata = read_tensors(path)
    tensors = {k: v.clone() for k, v in mapped.items()}
    del mapped
    if edit_tensors:
        edit_tensors(tensors)
    metadata = dict(metadata)
    if edit_document:
        document = json.loads(metadata["state"])
        edit_document(document)
        metadata["state"] = json.dumps(document)
    if raw_state is not None:
        metadata.pop("state")
    write_safetensors(tensors, path, metadata)
    return target


def _first_weight(tensors):
    return next(k for k in tensors if k.startswith("model.") and k.endswith("weight"))


def _set(path, value):
    def edit(document):
        holder = document
        for key in path[:-1]:
            holder = holder[key]
        holder[path[-1]] = value
    return edit


def _nan_tensor(tensors):
    tensors[_first_weight(tensors)][0] = float("nan")


def _int8(tensors):
    for key in [k for k in tensors if k.startswith("model.")]:
        tensors[key] = tensors[key].to(torch.int8)


def _drop(tensors):
    del tensors[_first_weight(tensors)]


def _reshape(tensors):
    key = _first_weight(tensors)
    tensors[key] = tensors[key].reshape(-1)[:3].clone()


TAMPERED = {
    "nan in a tensor": ({"edit_tensors": _nan_tensor}, "NaN"),
    "lr nan in the config": ({"edit_document": _set(["config", "lr"], float("nan"))}, "lr"),
    "int8 model tensors": ({"edit_tensors": _int8}, "int8"),
    "no state key": ({"raw_state": True}, "not a registry-core trainer state"),
    "step abc": ({"edit_document": _set(["step"], "abc")}, "step"),
    "step -5": ({"edit_document": _set(["step"], -5)}, "step"),
    "lr fast": ({"edit_document": _set(["config", "lr"], "fast")}, "lr"),
    "config a list": ({"edit_document": _set(["config"], [1, 2])}, "configuration"),
    "a missing tensor": ({"edit_tensors": _drop}, "missing"),
    "a wrong shape": ({"edit_tensors": _reshape}, "mis-shaped"),
    "code in a model option": ({"edit_document": _set(["create_options", "block"], "__import__('os').system('touch PWNED')")},
                               "unknown block"),
    "code in a create option": ({"edit_document": _set(["create_options"], {"num_classes": "__import__('os')"})},
                                "num_classes"),
}


@pytest.mark.parametrize("case", TAMPERED)
def test_a_tampered_trainer_state_is_one_line_and_exit_2(run_folder, tmp_path, capsys, monkeypatch, case):
    edits, words = TAMPERED[case]
    folder = _tamper(run_folder, tmp_path / "run", **edits)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--resume", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("registry-core: error:") and err.count("\n") == 1 and words in err, err
    assert not (tmp_path / "PWNED").exists()


def test_an_untouched_state_resumes(run_folder, tmp_path, capsys):
    """The control for the cases above: the same copy, untampered, is accepted."""
    folder = _tamper(run_folder, tmp_path / "run")
    assert main(["train", "--resume", str(folder), "--max-steps", "2"]) == 0
    assert "best validation top-1" in capsys.readouterr().out


BAD_TRAIN_OPTIONS = [
    (["--lr", "nan"], "lr"), (["--head-lr-mult", "nan"], "head_lr_mult"), (["--weight-decay", "-1"], "weight_decay"),
    (["--clip-grad", "-1"], "clip_grad"), (["--warmup-epochs", "-1"], "warmup_epochs"),
    (["--checkpoint-every", "-1"], "checkpoint_every"), (["--out", ""], "out"), (["--mixup", "nan"], "mixup"),
    (["--schedule", "step", "--step-epochs", "0"], "step_epochs"), (["--image-size", "60000"], "image_size"),
    (["--cutmix", "inf"], "cutmix"), (["--ema", "1.5"], "ema"), (["--momentum", "-0.1"], "momentum"),
    (["--gamma", "0"], "gamma"), (["--label-smoothing", "1"], "label_smoothing"), (["--epochs", "0"], "epochs"),
    (["--max-steps", "-3"], "max_steps"), (["--batch-size", "0"], "batch_size"), (["--accum-steps", "0"], "accum_steps"),
    (["--seed", "-1"], "seed"), (["--workers", "-2"], "workers"), (["--log-every", "0"], "log_every"),
]


@pytest.mark.parametrize(("extra", "word"), BAD_TRAIN_OPTIONS, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_train_refuses_each_bad_number_in_one_line(tmp_path, capsys, extra, word):
    args = ["train", "--model", "lenet5", "--dataset", "fake", "--out", str(tmp_path / "out"), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and word in err and "tensor(" not in err, err
    assert not (tmp_path / "out").exists()


def test_eval_refuses_a_negative_batch_size(tmp_path, capsys):
    assert main(["eval", "--weights", str(tmp_path / "w.safetensors"), "--dataset", "fake", "--batch-size", "-5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "batch_size" in err


REFUSALS = textwrap.dedent("""
    import sys, time
    from registry_core.cli import main
    out = sys.argv[1]
    start = time.perf_counter()
    codes = [main(["train", "--model", "no_such_model", "--dataset", "fake", "--out", out + "/a"]),
             main(["train", "--model", "lenet5", "--dataset", "no_such_data", "--out", out + "/a"]),
             main(["train", "--model", "lenet5", "--dataset", "folder", "--data-root", out + "/none", "--out", out + "/a"]),
             main(["train", "--model", "lenet5", "--dataset", "fake", "--out", out + "/run"]),
             main(["train", "--model", "lenet5", "--dataset", "fake", "--lr", "nan", "--out", out + "/a"]),
             main(["eval", "--weights", out + "/none.safetensors", "--dataset", "fake"])]
    print(codes, "torch" in sys.modules, time.perf_counter() - start)
""")


def test_refusals_that_need_no_tensor_import_no_torch(tmp_path):
    list_models()  # the index exists, as after any first use
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / STATE_FILE).write_bytes(b"")
    result = subprocess.run([sys.executable, "-c", REFUSALS, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("[2, 2, 2, 2, 2, 2] False"), (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 6 and all(line.startswith("registry-core: error:") for line in lines), lines
    assert "unknown model 'no_such_model'" in lines[0] and "already holds a run" in lines[3]


def test_cuda_without_a_device_is_refused_before_torch(tmp_path, monkeypatch):
    from registry_core.training import preflight

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(preflight.glob, "glob", lambda pattern: [])
    with pytest.raises(preflight.TrainingError, match="there is no GPU here"):
        preflight.check_device("cuda:0")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # not certain: torch decides
    preflight.check_device("cuda:0")
    preflight.check_device("cpu")
