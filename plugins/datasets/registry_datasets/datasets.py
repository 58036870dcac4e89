"""Dataset factories: raw images as tensors, no download ever.

scikit-learn and torchvision are imported inside ``load`` so that loading the plugin
(which happens whenever the registry loads) stays cheap.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from registry_core import DataError, DatasetFactory

MNIST_SOURCE = "http://yann.lecun.com/exdb/mnist/"  # the official page; torchvision mirrors it on ossci-datasets.s3.amazonaws.com
CIFAR_SOURCE = "https://www.cs.toronto.edu/~kriz/cifar.html"


def _split(dataset: Dataset, val_fraction: float, seed: int) -> tuple[Subset, Subset]:
    """A seeded random split; the same seed always gives the same split."""
    if not 0 < val_fraction < 1:
        raise DataError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, round(len(dataset) * val_fraction))
    return Subset(dataset, order[n_val:]), Subset(dataset, order[:n_val])


def _root(name: str, root: str | None, layout: str) -> Path:
    if root is None:
        raise DataError(f"dataset {name!r} needs --data-root, a folder holding {layout}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(f"dataset {name!r}: data root {path} does not exist; it should hold {layout}")
    return path


class Digits(DatasetFactory):
    description = "scikit-learn's 1,797 handwritten digits (8x8 grey), shipped with the package"
    in_memory, augment = True, "none"  # a flipped digit is another digit, or none

    def load(self, root=None, *, val_fraction: float = 0.2, seed: int = 0):
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
        train, val = _split(TensorDataset(images, torch.tensor(bunch.target)), val_fraction, seed)
        return train, val, [str(d) for d in range(10)]


class ImageFiles(Dataset):
    """An ImageFolder tree read lazily: each item is decoded by ``torchvision.io``
    (libjpeg-turbo, libpng) straight to a ``uint8`` RGB tensor, in whichever DataLoader
    worker asks for it; no PIL image is made."""

    def __init__(self, folder: Path):
        from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

        self.classes, class_to_idx = find_classes(str(folder))
        self.samples = make_dataset(str(folder), class_to_idx, extensions=IMG_EXTENSIONS)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from torchvision.io import ImageReadMode, decode_image

        path, label = self.samples[index]
        try:
            with warnings.catch_warnings():  # torchvision 0.29 points to TorchCodec; its decoders still work
                warnings.simplefilter("ignore", DeprecationWarning)
                return decode_image(path, mode=ImageReadMode.RGB), label
        except RuntimeError:  # a format torchvision.io does not decode (e.g. some TIFFs): PIL's way
            from PIL import Image
            from torchvision.transforms.functional import pil_to_tensor

            with Image.open(path) as image:
                return pil_to_tensor(image.convert("RGB")), label


class Folder(DatasetFactory):
    description = "an ImageFolder tree: ROOT/train/<class>/*, ROOT/val/<class>/*, or ROOT/<class>/* split by val_fraction"

    LAYOUT = "train/<class>/<images> and val/<class>/<images>, or <class>/<images> to split"

    def load(self, root=None, *, val_fraction: float = 0.1, seed: int = 0):
        path = _root("folder", root, self.LAYOUT)

        def tree(folder: Path) -> ImageFiles:
            try:
                return ImageFiles(folder)
            except FileNotFoundError as exc:
                raise DataError(f"dataset 'folder': {exc}; expected {self.LAYOUT}") from None

        if (path / "train").is_dir() and (path / "val").is_dir():
            train, val = tree(path / "train"), tree(path / "val")
            if train.classes != val.classes:
                raise DataError(f"dataset 'folder': train/ has classes {train.classes} but val/ has {val.classes}")
            return train, val, train.classes
        full = tree(path)
        return (*_split(full, val_fraction, seed), full.classes)


class MNIST(DatasetFactory):
    description = "MNIST from a local folder: ROOT/MNIST/raw/ with the four idx files"
    in_memory, augment = True, "none"

    def load(self, root=None):
        from torchvision.datasets import MNIST as Source

        files = "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"
        path = _root("mnist", root, f"MNIST/raw/ with the unzipped files {files} (from {MNIST_SOURCE})")
        try:
            train, val = Source(str(path), train=True), Source(str(path), train=False)
        except RuntimeError:
            raise DataError(f"dataset 'mnist': files missing; download the four .gz files from {MNIST_SOURCE} "
                            f"and put them, unzipped ({files}), in {path / 'MNIST' / 'raw'}") from None
        split = [TensorDataset(s.data.unsqueeze(1), s.targets) for s in (train, val)]
        return (*split, list(train.classes))


class CIFAR10(DatasetFactory):
    description = "CIFAR-10 from a local folder: ROOT/cifar-10-batches-py/ (the extracted python archive)"
    in_memory = True

    def load(self, root=None):
        from torchvision.datasets import CIFAR10 as Source

        layout = f"cifar-10-batches-py/ (extract there cifar-10-python.tar.gz, the 'python version' from {CIFAR_SOURCE})"
        path = _root("cifar10", root, layout)
        try:
            train, val = Source(str(path), train=True), Source(str(path), train=False)
        except RuntimeError:
            raise DataError(f"dataset 'cifar10': files missing or damaged; {path} should hold {layout}") from None
        split = [TensorDataset(torch.from_numpy(s.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(s.targets))
                 for s in (train, val)]
        return (*split, list(train.classes))


class Fake(DatasetFactory):
    description = "generated images (a fixed pattern per class plus noise) for smoke tests and benchmarks"
    in_memory = True

    def load(self, root=None, *, train_size: int = 512, val_size: int = 128, num_classes: int = 10,
             channels: int = 3, image_size: int = 32, seed: int = 0):
        for name, value in (("train_size", train_size), ("val_size", val_size), ("num_classes", num_classes),
                            ("channels", channels), ("image_size", image_size)):
            if value < 1:
                raise DataError(f"dataset 'fake': {name} must be at least 1, got {value}")
        generator = torch.Generator().manual_seed(seed)
        patterns = torch.rand(num_classes, channels, image_size, image_size, generator=generator)

        def make(n: int) -> TensorDataset:
            labels = torch.randint(num_classes, (n,), generator=generator)
            noise = torch.rand(n, channels, image_size, image_size, generator=generator)
            return TensorDataset((255 * (patterns[labels] + noise) / 2).to(torch.uint8), labels)

        return make(train_size), make(val_size), [f"class_{i}" for i in range(num_classes)]
