"""What a training run shows: a tqdm bar on a terminal, plain log lines otherwise
(CI logs, files, ``torchrun``), and nothing on ranks other than 0."""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    def __init__(self, enabled: bool, log_every: int):
        self.enabled, self.log_every = enabled, log_every
        self.tty = enabled and sys.stderr.isatty()

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

    def summary(self, record: dict[str, Any], total_steps: int) -> None:
        self.say(
            f"epoch {record['epoch']} (step {record['step']}/{total_steps})  "
            f"train loss {record['train_loss']:.4f} acc {record['train_acc']:.2f}%  "
            f"val loss {record['val_loss']:.4f} top-1 {record['val_top1']:.2f}% top-5 {record['val_top5']:.2f}%  "
            f"{record['images_per_s']:.0f} img/s"
        )


class _EpochBar:
    def __init__(self, progress: Progress, epoch: int, steps: int, done: int):
        self.progress, self.epoch, self.steps, self.count = progress, epoch, steps, 0
        self.bar = None
        if progress.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=steps, desc=f"epoch {epoch}", unit="step", leave=False, dynamic_ncols=True)
        elif progress.enabled and done:
            progress.say(f"epoch {epoch}: resuming after step {done} of this epoch")

    def update(self, sums: dict[str, float], rate: float, lr: float) -> None:
        self.count += 1
        seen = max(sums["seen"], 1)
        fields = {"loss": f"{sums['loss'] / seen:.4f}", "acc": f"{100.0 * sums['correct'] / seen:.2f}%",
                  "img/s": f"{rate:.0f}", "lr": f"{lr:.3g}"}
        if self.bar is not None:
            self.bar.set_postfix(fields, refresh=False)
            self.bar.update(1)
        elif self.progress.enabled and (self.count % self.progress.log_every == 0):
            self.progress.say(f"epoch {self.epoch} step {self.count}/{self.steps}  " + "  ".join(f"{k} {v}" for k, v in fields.items()))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
