"""Registered datasets, and turning their images into what a model expects.

A dataset plugin hands over a ``DatasetFactory``; the trainer asks it for train and
validation splits of raw images and fits them to the model here, from the model's
metadata alone (size, interpolation, mean/std). The core imports no torchvision: a
dataset yields tensors, and resizing and normalising are plain torch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import DataError, TrainingError, UnknownComponentError
from ..plugins.host import default_host


class DatasetFactory:
    """A dataset the trainer can load by name; subclass it and register an instance.

    ``load(root, **options)`` returns ``(train, val, classes)``: two map-style torch
    Datasets whose items are ``(image, label)`` and the list of class names. ``image``
    is a ``C x H x W`` tensor, ``uint8`` in 0..255 or floating point in 0..1, of any
    size (the trainer resizes it); ``label`` is an int (or 0-dim integer tensor) in
    ``range(len(classes))``. ``root`` is the folder the user named (``--data-root``),
    or ``None``. A dataset whose files are missing raises ``registry_core.DataError``
    saying where to put them; nothing downloads.

    ``in_memory``: the images are tensors already (no decoding), so the trainer loads
    them in its own process unless ``--workers`` says otherwise. ``augment``: the
    policy this dataset trains with by default (``None``: chosen by image size); a
    dataset whose labels a flip would change (digits, text) names one without flips.
    """

    description: str = ""
    in_memory: bool = False
    augment: str | None = None

    def load(self, root: str | None, **options: Any) -> tuple[Dataset, Dataset, list[str]]:
        raise NotImplementedError(f"{type(self).__name__} does not implement load()")


class LoadedDataset(NamedTuple):
    train: Dataset
    val: Dataset
    classes: list[str]
    channels: int
    in_memory: bool = False
    augment: str | None = None


def list_datasets(pattern: str = "*") -> list[str]:
    """Registered dataset names matching a shell-style ``pattern``, sorted."""
    return default_host().registry.names("dataset", pattern)


def load_dataset(name: str, root: str | None = None, **options: Any) -> LoadedDataset:
    """Load a registered dataset and check it keeps the ``DatasetFactory`` contract."""
    try:
        factory = default_host().registry.get("dataset", name).obj
    except UnknownComponentError as exc:
        raise DataError(f"{exc}; registered datasets: {', '.join(list_datasets()) or 'none'}") from None
    try:
        result = factory.load(root, **options)
    except TypeError as exc:
        raise DataError(f"dataset {name!r} cannot be loaded with options {options}: {exc}") from None
    if not (isinstance(result, tuple) and len(result) == 3):
        raise DataError(f"dataset {name!r}: load() must return (train, val, classes)")
    train, val, classes = result
    if len(train) == 0 or len(val) == 0:
        raise DataError(f"dataset {name!r} has an empty split (train {len(train)}, val {len(val)} images)")
    image, _ = train[0]
    if not (isinstance(image, Tensor) and image.ndim == 3):
        raise DataError(f"dataset {name!r}: images must be C x H x W tensors, got {type(image).__name__}")
    return LoadedDataset(train, val, list(classes), image.shape[0], bool(factory.in_memory), factory.augment)


def image_size_for(model: str, requested: int | None, meta) -> int:
    """The size images are trained at: the model's input size, or ``requested`` if it is
    not below the model's minimum."""
    smallest = max(meta.min_input_size[1:])
    if requested is None:
        return max(meta.input_size[1:])
    if requested < smallest:
        raise TrainingError(f"image size {requested} is below {model!r}'s minimum of {smallest}")
    return requested


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


class Resized(Dataset):
    """Images at ``size`` x ``size``, still raw (uint8 or 0..1 floats).

    Resizing happens per image because a folder's images differ in size; converting
    and normalising happen per batch (``normalize``), where they are cheap.
    """

    def __init__(self, dataset: Dataset, size: int, interpolation: str = "bilinear", labels: list[int] | None = None):
        self.dataset, self.size, self.mode, self.labels = dataset, size, interpolation, labels

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        """``labels``, when given, maps the dataset's labels to the model's."""
        image, label = self.dataset[index]
        if image.shape[-2:] != (self.size, self.size):
            image = resize(image, self.size, self.mode)
        return image, int(label) if self.labels is None else self.labels[int(label)]


def resize(image: Tensor, size: int | tuple[int, int], mode: str = "bilinear") -> Tensor:
    """One ``C x H x W`` image to ``size`` x ``size`` (or ``(height, width)``), keeping its dtype."""
    smooth = mode in ("bilinear", "bicubic")
    x = image.unsqueeze(0).float()
    x = F.interpolate(x, size=(size, size) if isinstance(size, int) else size, mode=mode, antialias=smooth, **({"align_corners": False} if smooth else {}))
    x = x.squeeze(0)
    return x.round().clamp(0, 255).to(torch.uint8) if image.dtype == torch.uint8 else x


def normalize(images: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """A batch of raw images -> floats normalised with the model's mean and std."""
    x = images.float()
    if images.dtype == torch.uint8:
        x = x / 255.0
    mean_t = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return (x - mean_t) / std_t


class ShardedBatches(Sampler[list[int]]):
    """Batches of indices for one process: the same for any number of processes.

    The epoch's order is a permutation seeded by ``(seed, epoch)``; process ``rank`` of
    ``world`` takes every ``world``-th index, so the batches of all processes together
    are exactly the single-process batches. Every image is used, the last batch being
    smaller if need be; when training, the order is first cut to a multiple of ``world``
    so that every process's batches are the same size (fewer than ``world`` images wait
    for the next epoch's order). ``skip`` drops the first batches (resuming mid-epoch).
    ``merge_single`` adds a last batch of one image to the batch before it, for models
    whose BatchNorm would otherwise normalise a single image.
    """

    def __init__(self, length: int, batch_size: int, *, rank: int = 0, world: int = 1, shuffle: bool = False,
                 seed: int = 0, epoch: int = 0, skip: int = 0, merge_single: bool = False):
        if batch_size % world:
            raise DataError(f"batch size {batch_size} must be divisible by the number of processes ({world})")
        self.length, self.per_rank, self.rank, self.world = length, batch_size // world, rank, world
        self.shuffle, self.seed, self.epoch, self.skip, self.merge_single = shuffle, seed, epoch, skip, merge_single

    def _indices(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.rank, self.length, self.world))
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.length, generator=generator)
        order = order[: self.length - self.length % self.world]
        return order[self.rank :: self.world].tolist()

    def _starts(self) -> list[int]:
        """Where each of this process's batches begins in its indices, the end included."""
        count = self.length // self.world if self.shuffle else len(range(self.rank, self.length, self.world))
        starts = [*range(0, count, self.per_rank), count]
        if self.merge_single and len(starts) > 2 and count - starts[-2] == 1:
            del starts[-2]
        return starts

    def __iter__(self) -> Iterator[list[int]]:
        indices, starts = self._indices(), self._starts()
        for begin, end in list(zip(starts, starts[1:]))[self.skip :]:
            yield indices[begin:end]

    def __len__(self) -> int:
        return max(len(self._starts()) - 1 - self.skip, 0)

    def last_batch(self) -> int:
        """The size of this process's last batch of the epoch (0: no batches)."""
        starts = self._starts()
        return starts[-1] - starts[-2] if len(starts) > 1 else 0


def make_loader(dataset: Dataset, batches: ShardedBatches, workers: int, device: torch.device, seed: int = 0) -> DataLoader:
    """A loader over ``batches``; its own generator keeps worker seeding off the global stream."""
    return DataLoader(dataset, batch_sampler=batches, num_workers=workers, pin_memory=device.type == "cuda",
                      generator=torch.Generator().manual_seed(seed))
