"""Accuracy of a model on a dataset: the trainer's validation and ``registry-core eval``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from ..errors import DataError
from ..factory.create import load
from ..model.compose import main_logits
from ..weights.safetensors_io import read_metadata
from .data import Resized, ShardedBatches, load_dataset, make_loader, normalize
from .distributed import Distributed


def evaluate_loader(model: nn.Module, loader: DataLoader, num_classes: int, inputs: Callable, dist: Distributed,
                    autocast: Callable) -> dict[str, Any]:
    """Loss, top-1, top-5 (top-k with k = min(5, classes)) and per-class top-1, in percent,
    summed over every process's share of ``loader``."""
    was_training = model.training
    model.eval()
    device = dist.device
    per_class = torch.zeros(2, num_classes, dtype=torch.float64, device=device)  # correct, seen
    sums = torch.zeros(2, dtype=torch.float64, device=device)  # loss, top-k hits
    k = min(5, num_classes)
    with torch.no_grad():
        for images, targets in loader:
            x, y = inputs(images), targets.to(device, non_blocking=True)
            with autocast():
                logits = main_logits(model(x)).float()
            top = logits.topk(k, dim=1).indices
            per_class[0].index_add_(0, y, (top[:, 0] == y).double())
            per_class[1].index_add_(0, y, torch.ones_like(y, dtype=torch.float64))
            sums[0] += F.cross_entropy(logits, y, reduction="sum")
            sums[1] += (top == y[:, None]).any(dim=1).sum()
    model.train(was_training)
    totals = dist.sum_tensor(torch.cat([per_class.flatten(), sums])).cpu()
    correct, seen = totals[:num_classes], totals[num_classes : 2 * num_classes]
    count = seen.sum().item()
    return {
        "loss": totals[-2].item() / count,
        "top1": 100.0 * correct.sum().item() / count,
        "top5": 100.0 * totals[-1].item() / count,
        "per_class": [100.0 * c / s if s else None for c, s in zip(correct.tolist(), seen.tolist())],
        "images": int(count),
    }


def evaluate(weights: str | Path, dataset: str, *, data_root: str | None = None, data_options: dict | None = None,
             batch_size: int = 256, image_size: int | None = None, workers: int = 0,
             device: str | None = None) -> dict[str, Any]:
    """Accuracy of the model in a weights file on ``dataset``'s validation split.

    The image size defaults to the one the weights were trained at (recorded by the
    trainer in the file's metadata), else the model's input size.
    """
    model = load(weights)
    data = load_dataset(dataset, data_root, **(data_options or {}))
    if model.num_classes != len(data.classes) or model.meta.input_size[0] != data.channels:
        raise DataError(
            f"{weights} holds a model for {model.num_classes} classes and {model.meta.input_size[0]} channels; "
            f"{dataset!r} has {len(data.classes)} classes and {data.channels} channels"
        )
    size = image_size or int(read_metadata(weights).get("image_size", max(model.meta.input_size[1:])))
    dist = Distributed.single(device)
    model.to(dist.device)
    val = Resized(data.val, size, model.meta.interpolation)
    loader = make_loader(val, ShardedBatches(len(val), batch_size), workers, dist.device)
    result = evaluate_loader(
        model, loader, len(data.classes), lambda images: normalize(images.to(dist.device), model.meta.mean, model.meta.std),
        dist, lambda: dist.autocast(None),
    )
    result["classes"] = data.classes
    result["image_size"] = size
    return result
