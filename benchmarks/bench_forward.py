"""Eval forward speed of our models against torchvision's, in one process.

For each name in MODELS that is registered, both models are built (ours with the
torchvision model's weights converted, when a ``torchvision/<name>`` converter exists),
put in eval mode and timed on the same input batch, alternating between the two on every
repetition so that load changes on the machine hit both alike. Prints the median
images/s of each and the ratio ours / torchvision (>= 1.0: we are not slower), plus the
largest output difference as a check that both computed the same thing.

    python benchmarks/bench_forward.py --reps 10 [--channels-last] [--models resnet50 vgg16]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings

import torch
import torchvision

import registry_core
from registry_core import UnknownComponentError

MODELS = ["resnet50", "resnext101_32x8d", "inception_v3", "googlenet", "vgg16", "alexnet"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=MODELS, help="model names (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--reps", type=int, default=10, help="timed forward passes per model")
    parser.add_argument("--warmup", type=int, default=2, help="untimed passes per model first")
    parser.add_argument("--channels-last", action="store_true", help="models and input in channels_last memory format")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    return parser.parse_args()


def build_pair(name: str) -> tuple[torch.nn.Module, torch.nn.Module, str]:
    """Our model and torchvision's, with equal weights when a converter allows it."""
    try:
        converter = registry_core.get_converter("torchvision", name)
    except UnknownComponentError:
        converter = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's notes on weights=None initialisation
        if converter is None:
            return registry_core.create(name), torchvision.models.get_model(name, weights=None), "random"
        theirs = torchvision.models.get_model(converter.source_name, weights=None, **converter.source_kwargs)
    ours = registry_core.create(name, **converter.create_kwargs)
    ours.load_state_dict(converter.to_ours(theirs.state_dict()), strict=True)
    return ours, theirs, "converted"


def time_pair(models: dict[str, torch.nn.Module], x: torch.Tensor, reps: int, warmup: int) -> tuple[dict[str, float], float]:
    """Median seconds per batch of each model, timed alternately; and max |difference|."""
    times: dict[str, list[float]] = {label: [] for label in models}
    with torch.inference_mode():
        outputs = {label: model(x) for label, model in models.items()}
        for _ in range(warmup - 1):
            for model in models.values():
                model(x)
        for rep in range(reps):
            order = list(models.items())
            for label, model in order if rep % 2 == 0 else reversed(order):
                start = time.perf_counter()
                model(x)
                times[label].append(time.perf_counter() - start)
    first, second = outputs.values()
    return {label: statistics.median(t) for label, t in times.items()}, (first - second).abs().max().item()


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    print(
        f"# {platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, torchvision {torchvision.__version__}; batch {args.batch_size}, "
        f"{args.reps} reps, {'channels_last' if args.channels_last else 'contiguous'}"
    )
    rows = [["model", "input", "weights", "ours img/s", "torchvision img/s", "ratio", "max |diff|"]]
    registered = set(registry_core.list_models())
    for name in args.models:
        if name not in registered:
            print(f"# skipped {name}: not registered (no plugin provides it yet)")
            continue
        ours, theirs, weights = build_pair(name)
        models = {"ours": ours.eval().to(memory_format=fmt), "torchvision": theirs.eval().to(memory_format=fmt)}
        size = ours.meta.input_size
        x = torch.randn(args.batch_size, *size, generator=torch.Generator().manual_seed(0)).to(memory_format=fmt)
        seconds, diff = time_pair(models, x, args.reps, args.warmup)
        speed = {label: args.batch_size / s for label, s in seconds.items()}
        rows.append([
            name, "x".join(map(str, size)), weights, f"{speed['ours']:.1f}", f"{speed['torchvision']:.1f}",
            f"{speed['ours'] / speed['torchvision']:.3f}", f"{diff:.1e}",
        ])
        del ours, theirs, models
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    rows.insert(1, ["-" * w for w in widths])
    for row in rows:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |")


if __name__ == "__main__":
    main()
