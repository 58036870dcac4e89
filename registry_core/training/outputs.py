"""The output folder of a run, written by rank 0 alone.

Opening it takes the folder's lock (one run per folder), refuses a folder that holds
another run unless this one resumes it, and records the configuration. Each checkpoint
writes the weights (``last``, ``best``, and with EMA ``ema`` and ``best_ema``) and the
trainer state; each epoch the metrics, the curves and, asked for, TensorBoard's scalars.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import TrainingError
from ..model.compose import ComposedModel
from ..weights.model_files import save
from .lock import STATE_FILE, RunLock, refuse_existing_run
from .logs import TensorBoardLog, write_metrics
from .plots import write_curves
from .state import save_state, write_json

# What a finished run may hold, in the order the CLI lists it.
__all__ = ["LISTED", "RunFolder", "listed_files", "refuse_existing_run"]
LISTED = ("last.safetensors", "best.safetensors", "ema.safetensors", "best_ema.safetensors", "metrics.jsonl",
          "metrics.csv", "curves.png", "tensorboard")


def listed_files(out: str | Path) -> list[Path]:
    """What a user looks at in a run's folder, of what it holds."""
    return [Path(out) / name for name in LISTED if (Path(out) / name).exists()]


class RunFolder:
    def __init__(self, path: str, *, resumed: bool, config: dict[str, Any], tensorboard: bool, first_step: int):
        self.path = Path(path)
        self.lock = RunLock(self.path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrainingError(f"cannot write to output folder {self.path}: {exc.strerror or exc}") from None
        self.lock.acquire()
        try:
            if not resumed:  # checked again under the lock: a run may have finished here meanwhile
                refuse_existing_run(path, f"resume ({path})")
            write_json(self.path / "config.json", config)
            self.tensorboard = TensorBoardLog(self.path, first_step) if tensorboard else None
        except BaseException:
            self.lock.release()
            raise

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
        self.lock.release()

    def checkpoint(self, model: ComposedModel, ema: ComposedModel | None, metadata: dict[str, str], best: str | None,
                   best_ema: str | None, optimizer_state: dict[str, Any], info: dict[str, Any]) -> None:
        """``best`` / ``best_ema``: the new best validation top-1 as text, or ``None``."""
        save(model, self.path / "last.safetensors", metadata=metadata)
        if best is not None:
            save(model, self.path / "best.safetensors", metadata={**metadata, "val_top1": best})
        if ema is not None:
            save(ema, self.path / "ema.safetensors", metadata=metadata)
            if best_ema is not None:
                save(ema, self.path / "best_ema.safetensors", metadata={**metadata, "val_top1": best_ema})
        save_state(self.path / STATE_FILE, model.state_dict(), optimizer_state, info,
                   ema_state=ema.state_dict() if ema is not None else None)

    def step(self, step: int, loss: float, accuracy: float, lr: float, images_per_s: float) -> None:
        if self.tensorboard is not None:
            self.tensorboard.step(step, loss, accuracy, lr, images_per_s)

    def epoch(self, history: list[dict[str, Any]]) -> None:
        write_metrics(self.path, history)
        write_curves(self.path / "curves.png", history)
        if self.tensorboard is not None:
            self.tensorboard.epoch(history[-1])
