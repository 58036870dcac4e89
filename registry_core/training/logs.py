"""The run's logs: ``metrics.jsonl`` and ``metrics.csv`` (one record per epoch, rewritten
whole so that they always match the trainer state) and, with ``--tensorboard``,
TensorBoard event files under ``OUT/tensorboard``."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from ..errors import TrainingError
from ..files import atomic_write

TENSORBOARD_DIR = "tensorboard"


def write_metrics(folder: Path, history: list[dict[str, Any]]) -> None:
    """``metrics.jsonl`` (a JSON line per epoch) and ``metrics.csv`` (a column per field)."""
    with atomic_write(folder / "metrics.jsonl", "w") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in history)
    columns = list(dict.fromkeys(key for record in history for key in record))
    with atomic_write(folder / "metrics.csv", "w") as handle:
        writer = csv.DictWriter(handle, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)


def require_tensorboard() -> None:
    """Refuse ``--tensorboard`` before training when its package is missing."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise TrainingError("--tensorboard needs the tensorboard package: pip install 'registry-core[tensorboard]'") from None


class TensorBoardLog:
    """Scalars per optimiser step (``train/*``) and per epoch (``epoch/*``, the curves of
    ``curves.png``), all against the optimiser step. Resuming at step ``first_step``
    hides what an earlier attempt logged after its last checkpoint."""

    def __init__(self, folder: Path, first_step: int):
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(folder / TENSORBOARD_DIR), purge_step=first_step + 1 if first_step else None)

    def step(self, step: int, loss: float, accuracy: float, lr: float, images_per_s: float) -> None:
        for name, value in (("loss", loss), ("accuracy", accuracy), ("lr", lr), ("images_per_s", images_per_s)):
            self.writer.add_scalar(f"train/{name}", value, step)

    def epoch(self, record: dict[str, Any]) -> None:
        for name, value in record.items():
            if name not in ("epoch", "step"):
                self.writer.add_scalar(f"epoch/{name}", value, record["step"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
