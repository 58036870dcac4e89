"""Accuracy of a model on a dataset: the trainer's validation and ``registry-core eval``."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from ..errors import DataError, WeightsError
from ..factory.create import load
from ..model.compose import main_logits
from ..weights.metadata import class_names
from ..weights.safetensors_io import read_metadata
from ..weights.validate import check_image_size
from .data import LoadedDataset, ShardedBatches, load_dataset, make_loader, normalize
from .distributed import Distributed
from .transforms import Augmented, eval_transform


def evaluate_loader(model: nn.Module, loader: DataLoader, num_classes: int, inputs: Callable, dist: Distributed,
                    autocast: Callable) -> dict[str, Any]:
    """Loss, top-1, per-class recall and precision (in percent) and the confusion matrix
    (rows: true class, columns: predicted), summed over every process's share of
    ``loader``; top-5 too when there are more than 5 classes (else it is always 100%)."""
    was_training = model.training
    model.eval()
    device = dist.device
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.float64, device=device)
    sums = torch.zeros(2, dtype=torch.float64, device=device)  # loss, top-5 hits
    k = min(5, num_classes)
    with torch.no_grad():
        for images, targets in loader:
            x, y = inputs(images), targets.to(device, non_blocking=True)
            with autocast():
                logits = main_logits(model(x)).float()
            top = logits.topk(k, dim=1).indices
            confusion.index_add_(0, y * num_classes + top[:, 0], torch.ones_like(y, dtype=torch.float64))
            sums[0] += F.cross_entropy(logits, y, reduction="sum")
            sums[1] += (top == y[:, None]).any(dim=1).sum()
    model.train(was_training)
    totals = dist.sum_tensor(torch.cat([confusion, sums])).cpu()
    matrix = totals[:-2].view(num_classes, num_classes)
    correct, seen, predicted = matrix.diagonal(), matrix.sum(1), matrix.sum(0)
    count = seen.sum().item()
    result = {
        "loss": totals[-2].item() / count,
        "top1": 100.0 * correct.sum().item() / count,
        "per_class": [100.0 * c / s if s else None for c, s in zip(correct.tolist(), seen.tolist())],
        "precision": [100.0 * c / p if p else None for c, p in zip(correct.tolist(), predicted.tolist())],
        "class_images": [int(s) for s in seen.tolist()],
        "confusion": matrix.long().tolist(),
        "images": int(count),
    }
    if num_classes > 5:
        result["top5"] = 100.0 * totals[-1].item() / count
    return result


def evaluate(weights: str | Path, dataset: str, *, data_root: str | None = None, data_options: dict | None = None,
             split: str = "val", batch_size: int = 256, image_size: int | None = None, workers: int = 0,
             device: str | None = None) -> dict[str, Any]:
    """Accuracy of the model in a weights file on ``dataset``'s ``split``: ``val``,
    ``train`` or ``all`` (every image, e.g. of a folder one points ``folder`` at).

    Labels are matched to the model's classes by name when the file records them (the
    trainer does), so a folder holding only some of the classes can be scored. The
    image size defaults to the one the weights were trained at, else the model's.
    """
    if split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    model = load(weights)
    header = read_metadata(weights)
    data = load_dataset(dataset, data_root, **(data_options or {}))
    if model.meta.input_size[0] != data.channels:
        raise DataError(f"{weights} holds a model for {model.meta.input_size[0]}-channel images; "
                        f"{dataset!r} has {data.channels}-channel images")
    classes, labels = _match_classes(weights, header, model.num_classes, data.classes, dataset)
    config = model.data_config
    size = check_image_size(image_size if image_size is not None else int(header.get("image_size", config.eval_size)))
    dist = Distributed.single(device)
    model.to(dist.device)
    transform = eval_transform(size, config.eval_crop_pct, config.interpolation,  # as the trainer validates
                               resize=config.eval_resize if size == config.eval_size else None)
    images = Augmented(SPLITS[split](data), transform, labels=labels)
    loader = make_loader(images, ShardedBatches(len(images), batch_size), workers, dist.device)
    result = evaluate_loader(
        model, loader, len(classes), lambda batch: normalize(batch.to(dist.device), config.mean, config.std),
        dist, lambda: dist.autocast(None),
    )
    return {**result, "classes": classes, "split": split, "image_size": size}


SPLITS: dict[str, Callable[[LoadedDataset], Dataset]] = {
    "val": lambda data: data.val,
    "train": lambda data: data.train,
    "all": lambda data: ConcatDataset([data.train, data.val]),
}


def _match_classes(weights, header, num_classes: int, names: list[str], dataset: str) -> tuple[list[str], list[int] | None]:
    """The model's class names, and the model's label for each of the dataset's labels
    (``None``: the same). Without recorded names, the classes are matched by position."""
    try:
        recorded = class_names(header, weights)
    except WeightsError as exc:
        warnings.warn(f"{exc}; matching the classes of {dataset!r} to the model's by position", stacklevel=3)
        recorded = None
    if recorded is None:
        if num_classes != len(names):
            raise DataError(f"{weights} holds a model for {num_classes} classes; {dataset!r} has {len(names)}")
        return names, None
    unknown = [n for n in names if n not in recorded]
    if unknown:
        raise DataError(f"{dataset!r} has classes the model in {weights} was not trained on: {', '.join(unknown)} "
                        f"(its classes: {', '.join(recorded)})")
    labels = [recorded.index(n) for n in names]
    return recorded, None if labels == list(range(len(recorded))) else labels
