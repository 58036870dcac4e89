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
import math
from pathlib import Path
from typing import Any

from torch import Tensor

from ..arguments import check_number
from ..errors import InvalidOverrideError, TrainingError, WeightsError
from ..files import atomic_write
from ..weights.safetensors_io import read_tensors, write_safetensors
from ..weights.validate import all_finite, check_create_options, fit_tensors, parse_json, shown
from .config import MAX_STEPS, TrainConfig
from .lock import STATE_FILE

__all__ = ["STATE_FILE", "check_against", "load_state", "save_state", "write_json"]

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
    """``(model_state, optimizer_state, info)`` as ``save_state`` was given them, checked as
    any file from outside: the header by the weights reader, every float tensor finite,
    the document's fields by type and range, its configuration by ``TrainConfig``'s own
    checks (``info["config"]`` is a checked ``TrainConfig``). ``check_against`` then fits
    the tensors to the model and optimizer they are for."""
    if not path.is_file():
        raise TrainingError(f"no trainer state at {path}: the run saved no checkpoint yet, or this is not a run folder")
    try:
        mapped, metadata = read_tensors(path)
    except WeightsError as exc:
        raise TrainingError(f"{path}: {exc}") from None
    if metadata.get("format") != FORMAT or metadata.get("version") != VERSION or "state" not in metadata:
        raise TrainingError(f"{path} is not a registry-core trainer state (version {VERSION})")
    info = _document(parse_json(metadata["state"], "the trainer state", path), path)
    tensors = {key: value.clone() for key, value in mapped.items()}  # optimiser buffers are updated in place
    bad = [key for key, value in tensors.items() if value.is_floating_point() and not all_finite(value)]
    if bad:
        raise TrainingError(f"{path}: {len(bad)} tensor(s) hold NaN or Inf: {', '.join(map(shown, bad[:5]))}")
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
            if section != "optimizer" or not index.isdigit() or not name:
                raise TrainingError(f"{path}: a tensor that belongs to no part of a trainer state: {shown(key)}")
            state.setdefault(int(index), {})[name] = value
    return model_state, {"state": state, "param_groups": saved["param_groups"]}, info


def _document(info: Any, path: Path) -> dict[str, Any]:
    """The state's JSON document, each field checked by type and range."""

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise TrainingError(f"{path}: the trainer state's {what}")

    need(isinstance(info, dict), "document is not a mapping")
    for key in ("step", "config", "history", "best_top1", "optimizer"):
        need(key in info, f"document has no {key!r}")
    try:
        info["step"] = check_number(info["step"], "step", integer=True, minimum=0, maximum=MAX_STEPS)
        for key in ("best_top1", "best_ema_top1"):
            if key in info:
                info[key] = check_number(info[key], key, minimum=-1, maximum=100)
        create = info.get("create_options") or {}
        need(isinstance(create, dict), "create_options is not a mapping")
        check_create_options(create, "create_options")
    except InvalidOverrideError as exc:
        raise TrainingError(f"{path}: {exc}") from None
    info["config"] = TrainConfig.from_saved(info["config"])
    need(isinstance(info["history"], list) and all(isinstance(e, dict) for e in info["history"]), "history is not a list of epochs")
    need(all(isinstance(e.get("train_loss"), (int, float)) for e in info["history"]), "history lacks training losses")
    classes = info.get("classes", [])
    need(isinstance(classes, list) and all(isinstance(c, str) for c in classes), "classes are not a list of names")
    sums = info.get("epoch_sums", {})
    need(isinstance(sums, dict) and all(isinstance(v, (int, float)) and math.isfinite(v) for v in sums.values()),
         "epoch_sums are not numbers")
    need(isinstance(info.get("scaler") or {}, dict), "scaler is not a mapping")
    saved = info["optimizer"]
    need(isinstance(saved, dict) and isinstance(saved.get("param_groups"), list)
         and isinstance(saved.get("state"), dict), "optimizer has no param_groups and state")
    need(all(isinstance(k, str) and k.isdigit() and isinstance(v, dict) for k, v in saved["state"].items()),
         "optimizer state is not indexed by parameter")
    for group in saved["param_groups"]:
        need(isinstance(group, dict) and isinstance(group.get("params"), list), "optimizer group has no parameters")
        for key in ("lr", "weight_decay", "momentum", "initial_lr"):
            value = group.get(key)
            if value is not None:
                need(not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
                     and value >= 0, f"optimizer {key} is not a finite number at least 0: {shown(repr(value))}")
    return info


def check_against(model_state: dict[str, Tensor], expected: dict[str, Tensor], what: str) -> dict[str, Tensor]:
    """``model_state`` fitted to ``expected`` (the built model's state): the same keys and
    shapes, each dtype by the weights files' policy (an int8 tensor for a float weight is
    refused), finite."""
    missing, unexpected = sorted(set(expected) - set(model_state)), sorted(set(model_state) - set(expected))
    shapes = [k for k in expected if k in model_state and model_state[k].shape != expected[k].shape]
    if missing or unexpected or shapes:
        parts = [f"{label} {', '.join(map(shown, keys[:3]))}{' ...' if len(keys) > 3 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shapes)) if keys]
        raise TrainingError(f"the trainer state's {what} does not fit the run's model: {'; '.join(parts)}")
    try:
        return fit_tensors(expected, model_state, source=f"the trainer state's {what}")[0]
    except WeightsError as exc:
        raise TrainingError(str(exc)) from None


def write_json(path: Path, document: Any) -> None:
    with atomic_write(path, "w") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
