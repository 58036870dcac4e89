"""The trainer state a run checkpoints, and reading it back to resume.

The trainer state is one safetensors file: the model's and optimizer's tensors, plus a
JSON document (epoch, step, configuration, history, the optimizer's non-tensor
fields) in its metadata. One file, written atomically, so a run killed at any moment
leaves a state whose parts belong together; nothing is pickled. The exported weights
(``last.safetensors``, ``best.safetensors``) are written by ``registry_core.save``, the
logs by ``logs.py``, the figures by ``plots.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import Tensor

from ..errors import TrainingError
from ..files import atomic_write
from ..weights.safetensors_io import read_tensors, write_safetensors

STATE_FILE = "trainer_state.safetensors"
FORMAT = "registry-core-trainer-state"
VERSION = "1"


def save_state(path: Path, model_state: dict[str, Tensor], optimizer_state: dict[str, Any], info: dict[str, Any],
               ema_state: dict[str, Tensor] | None = None) -> None:
    """Write the state atomically; ``info`` must be JSON-serialisable. ``ema_state``
    (the weights' average) comes back from ``load_state`` as ``info["ema_state"]``."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model_state.items()}
    tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in (ema_state or {}).items()})
    per_param: dict[str, dict[str, Any]] = {}
    for index, values in optimizer_state["state"].items():
        plain = per_param.setdefault(str(index), {})
        for name, value in values.items():
            if isinstance(value, Tensor):
                tensors[f"optimizer.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                plain[name] = value
    document = {**info, "optimizer": {"param_groups": optimizer_state["param_groups"], "state": per_param}}
    metadata = {"format": FORMAT, "version": VERSION, "state": json.dumps(document)}
    write_safetensors(tensors, path, metadata)


def load_state(path: Path) -> tuple[dict[str, Tensor], dict[str, Any], dict[str, Any]]:
    """``(model_state, optimizer_state, info)`` as ``save_state`` was given them."""
    if not path.is_file():
        raise TrainingError(f"no trainer state at {path}: the run saved no checkpoint yet, or this is not a run folder")
    mapped, metadata = read_tensors(path)
    tensors = {key: value.clone() for key, value in mapped.items()}  # optimiser buffers are updated in place
    if metadata.get("format") != FORMAT or metadata.get("version") != VERSION:
        raise TrainingError(f"{path} is not a registry-core trainer state (version {VERSION})")
    info = json.loads(metadata["state"])
    saved = info.pop("optimizer")
    state: dict[int, dict[str, Any]] = {int(i): dict(values) for i, values in saved["state"].items()}
    model_state = {}
    for key, value in tensors.items():
        section, _, rest = key.partition(".")
        if section == "model":
            model_state[rest] = value
        elif section == "ema":
            info.setdefault("ema_state", {})[rest] = value
        else:
            index, _, name = rest.partition(".")
            state.setdefault(int(index), {})[name] = value
    return model_state, {"state": state, "param_groups": saved["param_groups"]}, info


def write_json(path: Path, document: Any) -> None:
    with atomic_write(path, "w") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
