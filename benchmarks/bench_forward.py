"""Eval forward speed of our models, eager and fused, against torchvision's and timm's, in one process.

A thin caller of ``registry-core benchmark`` (``registry_core.benchmark``), inference
only, for each name in MODELS that is registered. Every variant holds the same weights
(torchvision's random initialisation, its BatchNorm statistics from one random batch,
converted into ours and into timm's layout by the registered converters), is fed the same
batch, and is timed alternately with the others, so that load changes on the machine hit
all of them alike:

  torchvision         torchvision eager, the baseline every ratio is taken against
  torchvision+cl      the same model and input in channels_last (how much is the layout alone)
  timm                timm eager, where timm has the architecture
  eager               our model eager
  fused               after ``model.fuse()`` (BatchNorms folded into the convolutions)
  fused+cl            after ``model.fuse(channels_last=True)``, fed channels_last input
  compiled            with ``--compile``: ``torch.compile`` of our model (slow to build)
  onnxruntime, int8   with ``--onnx``: our ONNX export and its int8 quantisation on ONNX Runtime

Prints, per model, the median images/s of each, its ratio to torchvision eager (> 1.0:
faster), the ratio of the best repetitions, and the cosine similarity of its logits to
ours eager. ``--clock cpu`` times this process's CPU time instead of the wall clock.

    python benchmarks/bench_forward.py --reps 5 [--batch-sizes 1 8] [--models resnet50] [--compile] [--onnx]
"""

from __future__ import annotations

import argparse

import registry_core
from registry_core.cli.benchmark import text

MODELS = ["resnet50", "resnext101_32x8d", "vgg16_bn", "inception_v3", "googlenet", "vit_b_16", "convnext_tiny"]
VARIANTS = ("torchvision", "torchvision+cl", "timm", "eager", "fused", "fused+cl")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=MODELS, help="model names (default: %(default)s)")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8], help="(default: %(default)s)")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions per variant and batch size")
    parser.add_argument("--warmup", type=int, default=2, help="untimed passes per variant and batch size first")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile of our model (slow to build)")
    parser.add_argument("--onnx", action="store_true", help="also time our ONNX export and its int8 quantisation")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall", help="what a repetition's time is (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    variants = VARIANTS + ("compiled",) * args.compile + ("onnxruntime", "int8") * args.onnx
    settings = registry_core.BenchmarkSettings(batch_sizes=tuple(args.batch_sizes), modes=("inference",), variants=variants,
                                               reps=args.reps, warmup=args.warmup, threads=args.threads, clock=args.clock)
    registered = set(registry_core.list_models())
    for name in args.models:
        if name not in registered:
            print(f"# {name}: skipped, not registered (no plugin provides it yet)")
            continue
        print(text(registry_core.benchmark(name, settings)))


if __name__ == "__main__":
    main()
