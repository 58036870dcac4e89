"""What a training run shows, on rank 0 only: a start line before the first step, then a
tqdm bar per epoch on a terminal, or elsewhere (CI logs, ``nohup``, a notebook's
subprocess, ``torchrun``) a plain line every ``log_every`` steps or every
``LOG_SECONDS``, whichever comes first, with the time left; and a line per epoch."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

LOG_SECONDS = 30.0  # off a terminal, the longest silence while training


def significant(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits and no exponent: 1234, 12.3, 0.0123."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(digits - 1 - math.floor(math.log10(abs(value))), 0)
    return f"{value:.{decimals}f}"


def duration(seconds: float) -> str:
    """``seconds`` as 45s, 3m05s or 2h07m."""
    seconds = max(round(seconds), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def epoch_line(record: dict[str, Any], total_steps: int) -> str:
    """One epoch's figures; top-5 only where the records have it (more than 5 classes)."""
    line = (f"epoch {record['epoch']} (step {record['step']}/{total_steps})  "
            f"train loss {record['train_loss']:.4f} acc {record['train_acc']:.2f}%  "
            f"val loss {record['val_loss']:.4f} top-1 {record['val_top1']:.2f}%")
    if "val_top5" in record:
        line += f" top-5 {record['val_top5']:.2f}%"
    if "val_ema_top1" in record:
        line += f"  ema top-1 {record['val_ema_top1']:.2f}%"
    return line + f"  {significant(record['images_per_s'])} img/s"


class Progress:
    """``clock``: seconds from any origin (``time.monotonic``)."""

    def __init__(self, enabled: bool, log_every: int, total_steps: int, first_step: int,
                 clock: Callable[[], float] = time.monotonic):
        self.enabled, self.log_every, self.total_steps, self.clock = enabled, log_every, total_steps, clock
        self.tty = enabled and sys.stdout.isatty() and sys.stderr.isatty()
        self.started = self.last_time = clock()
        self.first_step = self.last_step = first_step

    def epoch(self, epoch: int, steps: int, done: int) -> _EpochBar:
        return _EpochBar(self, epoch, steps, done)

    def say(self, line: str) -> None:
        if not self.enabled:
            return
        if self.tty:
            from tqdm import tqdm

            tqdm.write(line)
        else:
            print(line, flush=True)

    def summary(self, record: dict[str, Any]) -> None:
        self.say(epoch_line(record, self.total_steps))
        self.last_step, self.last_time = record["step"], self.clock()

    def eta(self, step: int) -> str:
        """The time left, from this process's pace so far (validation included)."""
        done = step - self.first_step
        if done <= 0:
            return "?"
        return duration((self.clock() - self.started) / done * (self.total_steps - step))

    def due(self, step: int) -> bool:
        """Whether a plain log line is due after ``step``: ``log_every`` steps or
        ``LOG_SECONDS`` since the last one."""
        now = self.clock()
        if step - self.last_step >= self.log_every or now - self.last_time >= LOG_SECONDS:
            self.last_step, self.last_time = step, now
            return True
        return False


class _EpochBar:
    def __init__(self, progress: Progress, epoch: int, steps: int, done: int):
        self.progress, self.epoch, self.steps, self.count = progress, epoch, steps + done, done
        self.bar = None
        if progress.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=steps, desc=f"epoch {epoch}", unit="step", leave=False, dynamic_ncols=True)
        elif progress.enabled and done:
            progress.say(f"epoch {epoch}: resuming after step {done} of this epoch")

    def update(self, sums: dict[str, float], rate: float, lr: float, step: int) -> None:
        """After optimiser step ``step`` (counted over the run): the epoch's running figures."""
        self.count += 1
        seen = max(sums["seen"], 1)
        fields = {"loss": f"{sums['loss'] / seen:.4f}", "acc": f"{100.0 * sums['correct'] / seen:.2f}%",
                  "img/s": significant(rate), "lr": f"{lr:.3g}"}
        if self.bar is not None:
            self.bar.set_postfix(fields, refresh=False)
            self.bar.update(1)
        elif self.progress.enabled and self.count < self.steps and self.progress.due(step):
            figures = "  ".join(f"{k} {v}" for k, v in fields.items())
            self.progress.say(f"epoch {self.epoch} step {self.count}/{self.steps}  {figures}  "
                              f"ETA {self.progress.eta(step)}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
