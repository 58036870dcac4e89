"""What a run tells its user: a start line and progress lines off a terminal, every image
used, divergence stopped with a cause named, TensorBoard and CSV logs, and one run per
output folder (a second is refused, a killed run's lock is taken over)."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from registry_core import DivergenceError, TrainConfig, Trainer, TrainingError, fit
from registry_core.cli import main
from registry_core.training import progress
from registry_core.training.divergence import DivergenceWatch
from registry_core.training.lock import LOCK_FILE, RunLock
from registry_core.training.state import STATE_FILE, load_state

TINY = {"train_size": 256, "val_size": 64, "channels": 1, "image_size": 32}  # lenet5-sized fake data: 10 classes
TINY_ARGS = [a for k, v in TINY.items() for a in ("--data-opt", f"{k}={v}")]


# -- progress ------------------------------------------------------------------------------
def test_off_a_terminal_a_start_line_comes_first_then_a_line_every_log_every_steps(capsys):
    fit(model="lenet5", dataset="fake", data_options=TINY, epochs=2, batch_size=64, log_every=3)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("training lenet5 on fake: 256 training and 64 validation images, 10 classes, at 32px; "
                               "4 steps per epoch (batch 64), 8 steps; cpu, ")
    assert lines[0].endswith(", float32")
    steps = [line.split()[:4] for line in lines if "ETA" in line]
    assert steps == [["epoch", "1", "step", "3/4"], ["epoch", "2", "step", "3/4"]]  # 3 steps after the last line
    assert [line.split()[:2] for line in lines if "(step" in line] == [["epoch", "1"], ["epoch", "2"]]


def test_a_line_is_due_every_log_seconds_with_the_time_left():
    now = [0.0]
    shown = progress.Progress(True, log_every=1000, total_steps=100, first_step=0, clock=lambda: now[0])
    said: list[str] = []
    shown.say = said.append  # type: ignore[method-assign]
    bar = shown.epoch(1, 100, 0)
    for step in range(1, 11):
        now[0] = 10.0 * step  # 10 s a step: a line every third step
        bar.update({"loss": 2.0 * step, "correct": step, "seen": 4 * step}, 0.04, 0.1, step)
    assert [line.split()[3] for line in said] == ["3/100", "6/100", "9/100"]
    assert said[0].endswith("img/s 0.0400  lr 0.1  ETA 16m10s")  # 97 steps left at 10 s each


@pytest.mark.parametrize("value, text", [(12345.6, "12346"), (1234.6, "1235"), (12.345, "12.3"), (0.04, "0.0400"),
                                         (0.0001234, "0.000123"), (0.0, "0")])
def test_rates_keep_three_significant_digits(value, text):
    assert progress.significant(value) == text


def test_durations_read_as_a_clock():
    assert [progress.duration(s) for s in (0.4, 45, 185, 7620)] == ["0s", "45s", "3m05s", "2h07m"]


# -- every image used ------------------------------------------------------------------------
def test_an_epoch_of_90_images_at_batch_64_takes_2_steps_and_uses_every_image(monkeypatch, capsys):
    trainer = Trainer(TrainConfig(model="lenet5", dataset="fake", data_options={**TINY, "train_size": 90}, epochs=1,
                                  batch_size=64))
    images: list[int] = []
    step = trainer.train_step
    monkeypatch.setattr(trainer, "train_step", lambda batches: images.append(sum(len(y) for _, y in batches)) or step(batches))
    trainer.fit()
    assert trainer.steps_per_epoch == 2 and images == [64, 26]
    assert "2 steps per epoch (batch 64, the epoch's last 26 images), 2 steps" in capsys.readouterr().out


def test_a_last_batch_of_one_joins_the_one_before_when_batchnorm_trains():
    config = dict(model="resnet18_cifar", dataset="fake", batch_size=8, image_size=8,
                  data_options={"train_size": 17, "val_size": 2, "num_classes": 3})
    trainer = Trainer(TrainConfig(**config))
    assert trainer.steps_per_epoch == 2 and "the epoch's last 9 images (a last batch of 1 joins" in trainer.describe()
    frozen = Trainer(TrainConfig(**config, freeze="stem,stages"))  # BatchNorm held in eval mode: one image is fine
    assert frozen.steps_per_epoch == 3 and "the epoch's last 1 image)" in frozen.describe()


# -- divergence ------------------------------------------------------------------------------
def test_an_absurd_learning_rate_exits_1_naming_the_cause_and_keeps_only_finite_weights(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "lenet5", "--dataset", "fake", *TINY_ARGS, "--batch-size", "32", "--epochs", "2",
            "--lr", "1e6", "--checkpoint-every", "1", "--out", str(out)]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("registry-core: error: training diverged at epoch 1, step ")
    assert "the likely cause is the learning rate (peak 1e+06, --lr)" in err and "--head-lr-mult" not in err
    assert f"{out} keeps the last finite checkpoint, from step " in err or "no checkpoint was written" in err
    files = sorted(out.glob("*.safetensors"))
    assert all(torch.isfinite(t).all() for f in files for t in load_file(f).values() if t.is_floating_point())
    assert not (out / LOCK_FILE).exists()


def test_a_loss_far_above_the_first_epochs_is_divergence_and_a_head_multiplier_is_named():
    watch = DivergenceWatch(10, lr=0.05, head_lr_mult=10)
    watch.check_epoch(2.5, "epoch 1")
    watch.check_epoch(9.9, "epoch 2")  # below 4x the first epoch's
    with pytest.raises(DivergenceError, match=r"epoch 3: the mean training loss is 25.9, more than 4x the first "
                                              r"epoch's 2.5; .*learning rate \(peak 0.05.*--head-lr-mult 10"):
        watch.check_epoch(25.9, "epoch 3")
    fresh = DivergenceWatch(5, lr=0.005, head_lr_mult=1)  # a first epoch far above a uniform guess is caught too
    with pytest.raises(DivergenceError, match=r"more than 4x ln\(classes\) = 1.61; the likely cause") as caught:
        fresh.check_epoch(25.9, "epoch 1")
    assert "head" not in str(caught.value)


# -- logs ------------------------------------------------------------------------------------
def test_tensorboard_event_files_hold_scalars_per_step_and_per_epoch(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    trainer = fit(model="lenet5", dataset="fake", data_options=TINY, epochs=2, batch_size=64, tensorboard=True,
                  out=str(out))
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert {"train/loss", "train/accuracy", "train/lr", "epoch/val_loss", "epoch/val_top5"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("train/loss")] == list(range(1, 9))
    assert [e.value for e in events.Scalars("train/lr")] == pytest.approx([trainer.lr_at(s) for s in range(8)])
    val = events.Scalars("epoch/val_top1")
    assert [e.step for e in val] == [4, 8] and [e.value for e in val] == pytest.approx([r["val_top1"] for r in trainer.history])


def test_tensorboard_without_its_package_is_refused_in_one_line_naming_the_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    out = tmp_path / "run"
    assert main(["train", "--model", "lenet5", "--dataset", "fake", "--tensorboard", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'registry-core[tensorboard]'" in err and not out.exists()


# -- one run per folder ----------------------------------------------------------------------
def test_a_run_on_a_folder_in_use_is_refused_naming_the_holder(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    with RunLock(out):
        args = ["train", "--model", "lenet5", "--dataset", "fake", *TINY_ARGS, "--max-steps", "1", "--out", str(out)]
        assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{out} is in use by another run: pid {os.getpid()} on {socket.gethostname()}, started " in err
    assert sorted(p.name for p in out.iterdir()) == []  # the refused run wrote nothing, and the lock is gone


def _lock(folder, **fields):
    folder.mkdir(exist_ok=True)
    record = {"pid": os.getpid(), "host": socket.gethostname(), "started": "then", **fields}
    (folder / LOCK_FILE).write_text(json.dumps(record))


def test_a_stale_lock_is_taken_over_and_a_live_or_unknown_one_is_not(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    cases = {"killed": {"pid": int(gone.stdout)}, "pid reused": {"process_start": -5}}
    for name, fields in cases.items():
        _lock(tmp_path / name, **fields)
        with RunLock(tmp_path / name) as lock:
            assert json.loads((tmp_path / name / LOCK_FILE).read_text())["pid"] == os.getpid() and lock.held
        assert not (tmp_path / name / LOCK_FILE).exists()
    _lock(tmp_path / "elsewhere", host="another-machine", pid=1)
    with pytest.raises(TrainingError, match="pid 1 on another-machine"):
        RunLock(tmp_path / "elsewhere").acquire()
    (tmp_path / "starting").mkdir()
    (tmp_path / "starting" / LOCK_FILE).write_text("")  # created, not yet written
    with pytest.raises(TrainingError, match="in use by a run that is starting"):
        RunLock(tmp_path / "starting").acquire()
    os.utime(tmp_path / "starting" / LOCK_FILE, (time.time() - 60, time.time() - 60))  # its writer died long ago
    with RunLock(tmp_path / "starting"):
        pass


def test_two_runs_on_one_folder_at_once_give_exactly_one_refusal(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "lenet5", "--dataset", "fake", *TINY_ARGS, "--data-opt", "train_size=2048", "--epochs", "1",
            "--batch-size", "32", "--log-every", "1000", "--out", str(out)]  # 64 steps: the first run is still training
    first = subprocess.Popen([sys.executable, "-m", "registry_core", *args], env={**os.environ, "OMP_NUM_THREADS": "1"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / LOCK_FILE).exists() and first.poll() is None:  # the first run has the folder
            assert time.monotonic() < deadline
            time.sleep(0.02)
        second = main(args)  # meanwhile, from this process
    finally:
        _, first_err = first.communicate(timeout=300)
    assert sorted([first.returncode, second]) == [0, 2], first_err
    refusal = capsys.readouterr().err
    assert f"{out} is in use by another run: pid {first.pid} on " in refusal or "already holds a run" in refusal
    assert load_state(out / STATE_FILE)[2]["step"] == 64  # the first run's; the refused one wrote nothing
    assert not (out / LOCK_FILE).exists()
