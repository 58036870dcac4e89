"""The generic trainer against the tutorial's hand-written loop, in one run.

Same model, same images (the ``fake`` dataset, already at the model's size), same batch
and optimiser: the plain loop is forward, cross-entropy, zero_grad, backward, step over
a DataLoader of ready tensors. For each model the trainer runs with default options,
then with ``--channels-last``, ``--amp bf16`` and ``--compile``. Throughput is images/s
of the last of two epochs (the first pays for allocation and compilation); the plain
loop runs before and after the default trainer and its better figure counts, which
keeps a busy machine from flattering the trainer.

    python benchmarks/bench_train.py [--steps 6] [--models resnet18_cifar:128 lenet5:128] [--variants default compile]

Few steps per epoch make the fixed cost of starting an epoch weigh more; use more
``--steps`` for steadier ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import registry_core
from registry_core import TrainConfig, Trainer
from registry_core.training.data import load_dataset, normalize

VARIANTS = {"default": {}, "channels-last": {"channels_last": True}, "amp-bf16": {"amp": "bf16"}, "compile": {"compile": True}}


def plain_loop(name: str, images: torch.Tensor, labels: torch.Tensor, batch: int, lr: float) -> float:
    torch.manual_seed(0)
    model = registry_core.create(name, num_classes=10, in_chans=images.shape[1])
    x = normalize(images, model.meta.mean, model.meta.std)
    loader = DataLoader(TensorDataset(x, labels), batch_size=batch, shuffle=True, drop_last=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
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


def trainer(name: str, data_options: dict, batch: int, **options) -> float:
    config = TrainConfig(model=name, dataset="fake", data_options=data_options, batch_size=batch, epochs=2,
                         log_every=10**6, **options)
    with contextlib.redirect_stdout(io.StringIO()):  # the epoch summaries
        return Trainer(config).fit().history[-1]["images_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="optimiser steps per epoch")
    parser.add_argument("--models", nargs="+", default=["resnet18_cifar:128", "lenet5:128"], metavar="NAME:BATCH")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="VARIANT",
                        help=f"trainer variants to time (default: all of {', '.join(VARIANTS)})")
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


if __name__ == "__main__":
    main()
