"""The generic trainer against the tutorial's hand-written loop, in one run.

Same model, same images (the ``fake`` dataset, already at the model's size), same batch
and optimiser: the plain loop is forward, cross-entropy, zero_grad, backward, step over
a DataLoader of ready tensors. For each model the trainer runs with default options,
then with ``--channels-last``, ``--amp bf16`` and ``--compile``. Throughput is images/s
of the last of two epochs (the first pays for allocation and compilation); the plain
loop runs before and after the default trainer and its better figure counts, which
keeps a busy machine from flattering the trainer.

    python benchmarks/bench_train.py [--steps 6] [--models resnet18_cifar:128 lenet5:128] [--variants default compile]
                                     [--folder-images 3000]

Few steps per epoch make the fixed cost of starting an epoch weigh more; use more
``--steps`` for steadier ratios.

The folder case writes generated JPEGs of two sizes to a temporary folder and trains
LeNet-5 (RGB, 32 px, crop-flip) on it, against ``torchvision.datasets.ImageFolder``
with the same transforms (PIL decoding, ``transforms.v2``) in a DataLoader with as many
workers: there, decoding and augmenting the images is what is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import registry_core
from registry_core import TrainConfig, Trainer
from registry_core.training.data import available_cores, load_dataset, normalize

VARIANTS = {"default": {}, "channels-last": {"channels_last": True}, "amp-bf16": {"amp": "bf16"}, "compile": {"compile": True}}


def two_epochs(model, loader: DataLoader, optimizer: torch.optim.Optimizer) -> float:
    """The tutorial's loop; images/s of the second epoch."""
    model.train()
    for _ in range(2):
        start, seen = time.perf_counter(), 0
        for inputs, targets in loader:
            loss = F.cross_entropy(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen += len(targets)
    return seen / (time.perf_counter() - start)


def plain_loop(name: str, images: torch.Tensor, labels: torch.Tensor, batch: int, lr: float) -> float:
    torch.manual_seed(0)
    model = registry_core.create(name, num_classes=10, in_chans=images.shape[1])
    x = normalize(images, model.meta.mean, model.meta.std)
    loader = DataLoader(TensorDataset(x, labels), batch_size=batch, shuffle=True, drop_last=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    return two_epochs(model, loader, optimizer)


def trainer(name: str, data_options: dict, batch: int, **options) -> float:
    config = TrainConfig(model=name, dataset="fake", data_options=data_options, batch_size=batch, epochs=2,
                         augment="none", log_every=10**6, **options)  # the plain loop does not augment either
    with contextlib.redirect_stdout(io.StringIO()):  # the epoch summaries
        return Trainer(config).fit().history[-1]["images_per_s"]


def write_folder(root: Path, count: int, classes: int = 4) -> None:
    """``count`` JPEGs under ``root/train`` (and a few under ``root/val``), half 64x48 and half 160x120."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", count), ("val", max(count // 20, classes))):
        for i in range(n):
            folder = root / split / f"class_{i % classes}"
            folder.mkdir(parents=True, exist_ok=True)
            w, h = (64, 48) if i % 2 else (160, 120)
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{i}.jpg", quality=90)


def folder_plain_loop(root: Path, batch: int, workers: int) -> float:
    """The tutorial's way: ImageFolder (PIL) and the same crop-flip transforms."""
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2

    torch.manual_seed(0)
    model = registry_core.create("lenet5", num_classes=4, in_chans=3)
    meta = model.meta
    transform = v2.Compose([v2.PILToTensor(), v2.Resize(32, antialias=True), v2.CenterCrop(32), v2.RandomCrop(32, padding=4),
                            v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(meta.mean, meta.std)])
    loader = DataLoader(ImageFolder(str(root / "train"), transform=transform), batch_size=batch, shuffle=True,
                        drop_last=False, num_workers=workers)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    return two_epochs(model, loader, optimizer)


def folder_case(count: int, batch: int = 64) -> None:
    workers = available_cores()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_folder(root, count)
        print(f"\nfolder: {count} JPEGs (64x48 and 160x120) -> lenet5 at 32x32, crop-flip, batch {batch}, {workers} workers")
        plain = folder_plain_loop(root, batch, workers)
        config = TrainConfig(model="lenet5", dataset="folder", data_root=str(root), batch_size=batch, epochs=2,
                             augment="crop-flip", workers=workers, log_every=10**6)
        with contextlib.redirect_stdout(io.StringIO()):
            rate = Trainer(config).fit().history[-1]["images_per_s"]
        print(f"  {'ImageFolder + DataLoader':<24} {plain:9.1f} img/s")
        print(f"  {'trainer folder':<24} {rate:9.1f} img/s  {rate / plain:5.2f}x the ImageFolder loop")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="optimiser steps per epoch")
    parser.add_argument("--models", nargs="+", default=["resnet18_cifar:128", "lenet5:128"], metavar="NAME:BATCH")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="VARIANT",
                        help=f"trainer variants to time (default: all of {', '.join(VARIANTS)})")
    parser.add_argument("--folder-images", type=int, default=3000, help="images in the folder case (0: skip it)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; images/s of epoch 2 of 2, {args.steps} steps each")
    for item in args.models:
        name, batch = item.split(":")[0], int(item.split(":")[1])
        info = registry_core.model_info(name)
        channels, size = info["input_size"][0], info["input_size"][1]
        data_options = {"train_size": batch * args.steps, "val_size": batch, "channels": channels, "image_size": size}
        data = load_dataset("fake", **data_options)
        images, labels = data.train.tensors
        print(f"\n{name} at {size}x{size}, batch {batch}")
        plain = [plain_loop(name, images, labels, batch, 0.05)]
        default = trainer(name, data_options, batch)
        plain.append(plain_loop(name, images, labels, batch, 0.05))  # before and after: the better one counts
        base = max(plain)
        print(f"  {'plain loop':<24} {base:9.1f} img/s  (runs: {plain[0]:.1f}, {plain[1]:.1f})")
        for label, options in ((v, VARIANTS[v]) for v in args.variants):
            try:
                rate = default if not options else trainer(name, data_options, batch, **options)
            except Exception as exc:  # e.g. torch.compile without a C++ compiler: report, keep going
                print(f"  {'trainer ' + label:<24} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}")
                continue
            print(f"  {'trainer ' + label:<24} {rate:9.1f} img/s  {rate / base:5.2f}x the plain loop")
    if args.folder_images:
        folder_case(args.folder_images)


if __name__ == "__main__":
    main()
