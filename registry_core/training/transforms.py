"""Per-image transforms for training and validation, chosen from the model's data config.

Validation (and the ``none`` policy) is one resize of the shorter side to
``size / crop_pct`` and a centre crop, in plain torch, so a later public
``transforms()`` can return ``eval_transform`` as it is. The random policies come from
``torchvision.transforms.v2``, imported only when one is used.

Augmentation draws from torch's global generator, so ``Augmented`` seeds it from
``(seed, epoch, index)`` around each image, inside a forked generator state: an image
gets the same augmentation whichever process or worker loads it, and whenever, which is
what keeps a resumed run exact; the training process's own random stream is untouched.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import TrainingError
from ..model.data_config import DataConfig
from .config import POLICIES
from .data import resize

SMALL = 64  # inputs up to this size default to crop-flip, larger ones to imagenet

Transform = Callable[[Tensor], Tensor]


def resize_shorter(image: Tensor, size: int, mode: str = "bilinear") -> Tensor:
    """A ``C x H x W`` image with its shorter side at ``size``, keeping dtype and aspect."""
    h, w = image.shape[-2:]
    scale = size / min(h, w)
    target = (max(size, round(h * scale)), max(size, round(w * scale)))
    return image if (h, w) == target else resize(image, target, mode)


def center_crop(image: Tensor, size: int) -> Tensor:
    h, w = image.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return image[..., top : top + size, left : left + size]


def eval_transform(size: int, crop_pct: float = 1.0, interpolation: str = "bilinear", resize: int | None = None) -> Transform:
    """Resize the shorter side to ``resize`` (default ``floor(size / crop_pct)``), then
    centre-crop ``size``."""
    if not 0 < crop_pct <= 1:
        raise TrainingError(f"crop_pct must be in (0, 1], got {crop_pct}")
    scaled = resize if resize is not None else math.floor(size / crop_pct)

    def transform(image: Tensor) -> Tensor:
        if scaled == size and image.shape[-2:] == (size, size):
            return image  # already the model's size: nothing to resize or crop
        return center_crop(resize_shorter(image, scaled, interpolation), size)

    return transform


def trained_data_config(data: DataConfig, size: int) -> DataConfig:
    """``data`` as the trainer uses it at ``size`` pixels: one size for training and
    validation, the crop and normalisation kept (what its saved files then record)."""
    if data.input_size[1:] == (size, size) and data.test_input_size is None and data.resize_size is None:
        return data
    return replace(data, input_size=(data.input_size[0], size, size), test_input_size=None, test_crop_pct=None,
                   resize_size=None)


def default_policy(size: int) -> str:
    return "crop-flip" if size <= SMALL else "imagenet"


def train_transform(policy: str, size: int, crop_pct: float = 1.0, interpolation: str = "bilinear") -> Transform:
    """The training transform for ``policy`` at ``size`` pixels (see ``POLICIES``)."""
    if policy not in POLICIES:
        raise TrainingError(f"augment must be one of {', '.join(POLICIES)}, got {policy!r}")
    resized = eval_transform(size, crop_pct, interpolation)
    if policy == "none":
        return resized
    from torchvision.transforms import v2

    mode = v2.InterpolationMode(interpolation)
    geometry = "imagenet" if policy == "imagenet" or (policy != "crop-flip" and size > SMALL) else "crop-flip"
    if geometry == "imagenet":
        steps: list = [v2.RandomResizedCrop(size, interpolation=mode, antialias=True), v2.RandomHorizontalFlip()]
    else:
        steps = [resized, v2.RandomCrop(size, padding=4), v2.RandomHorizontalFlip()]
    if policy in ("trivialaugment", "randaugment"):
        # their colour operations (posterize, solarize) are defined on 0..255 images
        steps.append(v2.ToDtype(torch.uint8, scale=True))
        steps.append(v2.TrivialAugmentWide(interpolation=mode) if policy == "trivialaugment" else v2.RandAugment(interpolation=mode))
    return v2.Compose(steps)


class Augmented(Dataset):
    """``dataset``'s images through ``transform``, each seeded from ``(seed, epoch, index)``.

    ``labels``, when given, maps the dataset's labels to the model's. ``set_epoch``
    before each epoch's loader is made (workers take a copy of the dataset then).
    """

    def __init__(self, dataset: Dataset, transform: Transform, *, seed: int | None = None,
                 labels: list[int] | None = None):
        self.dataset, self.transform, self.seed, self.labels, self.epoch = dataset, transform, seed, labels, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image, label = self.dataset[index]
        if self.seed is None:
            image = self.transform(image)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(((self.seed * 1_000_003 + self.epoch) * 1_000_003 + index) % 2**63)
                image = self.transform(image)
        return image, int(label) if self.labels is None else self.labels[int(label)]


def batch_mix(mixup: float, cutmix: float, num_classes: int) -> Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None:
    """Mixup and/or CutMix of a batch (``torchvision.transforms.v2``): images and soft
    targets; with both, each batch gets one of the two at random. Draws from the
    training process's stream, which the trainer reseeds from ``(seed, rank, step)``."""
    if not mixup and not cutmix:
        return None
    from torchvision.transforms import v2

    mixes = ([v2.MixUp(alpha=mixup, num_classes=num_classes)] if mixup else []) + (
        [v2.CutMix(alpha=cutmix, num_classes=num_classes)] if cutmix else [])
    return mixes[0] if len(mixes) == 1 else v2.RandomChoice(mixes)
