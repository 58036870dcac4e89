"""Refusals that need no tensor, made before torch is imported.

``train`` and ``eval`` check here what a name, a path or a device string already tells:
an unknown model or dataset (answered from the index, which imports no torch when no
plugin host is loaded), a missing data root or weights file, a folder that holds a run,
and ``cuda`` asked for on a machine with visibly no NVIDIA device. A user's mistake is
answered at once rather than after torch's import; anything uncertain is left to the
later, full checks.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from ..errors import DataError, TrainingError, UnknownComponentError, UnknownModelError
from ..factory.catalog import list_components, list_models
from .config import TrainConfig
from .lock import refuse_existing_run


def refuse_early(config: TrainConfig | None, how_to_resume: str = "", *, device: str | None = None) -> None:
    """The checks of a new run (``config``), or of a resumed one's ``device`` alone."""
    if config is None:
        check_device(device)
        return
    check_model(config.model)
    check_data(config.dataset, config.data_root)
    check_device(config.device)
    if config.weights is not None:
        check_file(config.weights, "weights")
    refuse_existing_run(config.out, how_to_resume)


def refuse_early_eval(weights: str, dataset: str, data_root: str | None, device: str | None) -> None:
    check_file(weights, "weights")
    check_data(dataset, data_root)
    check_device(device)


def check_model(name: str) -> None:
    models = list_models()
    if name not in models:
        raise UnknownModelError(name, models, "registry-core list shows every model")


def check_data(dataset: str, data_root: str | None) -> None:
    datasets = list_components("dataset")
    if dataset not in datasets:
        raise DataError(f"{UnknownComponentError('dataset', dataset, datasets)}; registered datasets: "
                        f"{', '.join(datasets) or 'none'}")
    if data_root is not None and not Path(data_root).is_dir():
        raise DataError(f"the data root {data_root} does not exist or is not a folder")


def check_file(path: str, what: str) -> None:
    if not Path(path).is_file():
        raise TrainingError(f"no {what} file at {path}")


def check_device(device: str | None) -> None:
    """``cuda`` on a machine without a single NVIDIA device node, where no
    ``CUDA_VISIBLE_DEVICES`` says otherwise, cannot work; everything else is torch's to judge."""
    if device is None or not device.startswith("cuda"):
        return
    if "CUDA_VISIBLE_DEVICES" in os.environ or glob.glob("/dev/nvidia*") or glob.glob("/dev/dxg"):
        return
    raise TrainingError(f"--device {device}: '{device}' asked for, but there is no GPU here (no /dev/nvidia* device); use cpu")
