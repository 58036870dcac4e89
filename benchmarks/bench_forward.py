"""Eval forward speed of our models, eager and fused, against torchvision's and timm's, in one process.

For each name in MODELS that is registered, every variant is built with the same
weights: torchvision's random initialisation (its BatchNorm statistics taken from one
random batch, so activations keep their scale, and a classifier it starts at zero, as
ViT's, drawn at random, so outputs are not all zero), converted into ours by the
registered ``torchvision/<name>`` converter, and from ours into timm's layout by the
``timm/<name>`` converter where there is one (timm's model of that architecture, under
timm's name where it differs, e.g. ``vit_base_patch16_224``; else timm keeps its own
random weights, and the table says so). Variants, all under ``torch.inference_mode()``:

  torchvision         torchvision eager, the baseline every ratio is taken against
  torchvision+cl      the same model and input in channels_last (how much is the layout alone)
  timm                timm eager, where timm has the architecture
  ours                our model eager
  ours fused          after ``model.fuse()`` (BatchNorms folded into the convolutions)
  ours fused+cl       after ``model.fuse(channels_last=True)``, fed channels_last input
  ours fused+cl jit   with ``--jit``: that model scripted, frozen and run through
                      ``torch.jit.optimize_for_inference`` (oneDNN layouts, prepacked weights);
                      a ScriptModule without our API, CPU-bound and deprecated by PyTorch, so
                      timed here as a ceiling rather than offered by ``fuse()``
  <each> compiled     ``torch.compile`` of each of the above, with ``--compile`` (slow to build)

At each batch size the variants are timed on the same batch, alternating their order on
every repetition so that load changes on the machine hit all of them alike. Prints the
median images/s of each and its ratio to torchvision eager (> 1.0: faster), the ratio of
the best repetitions (on a machine shared with other work, the best is the least
disturbed), and the largest output difference from torchvision's next to the size of
torchvision's outputs, as a check that all computed the same thing. ``--clock cpu`` times
this process's CPU time instead of the wall clock: steadier when other processes compete
for the cores, and, with ``--threads 1``, the time the work itself took.

    python benchmarks/bench_forward.py --reps 5 [--batch-sizes 1 8] [--models resnet50] [--compile] [--jit]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from typing import NamedTuple

import timm
import torch
import torchvision
from torch import Tensor, nn

import registry_core
from registry_core import RegistryCoreError

MODELS = ["resnet50", "resnext101_32x8d", "vgg16_bn", "inception_v3", "googlenet", "vit_b_16", "convnext_tiny"]
BASELINE = "torchvision"


class Variant(NamedTuple):
    """A model to time, and how the shared batch becomes its input (untimed)."""

    model: Callable[[Tensor], Tensor]
    prepare: Callable[[Tensor], Tensor] = lambda x: x


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=MODELS, help="model names (default: %(default)s)")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8], help="(default: %(default)s)")
    parser.add_argument("--reps", type=int, default=5, help="timed forward passes per variant and batch size")
    parser.add_argument("--warmup", type=int, default=2, help="untimed passes per variant and batch size first")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile of every variant (slow to build)")
    parser.add_argument("--jit", action="store_true", help="also time the fused model through torch.jit.optimize_for_inference")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall", help="what a repetition's time is (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    return parser.parse_args()


def channels_last(x: Tensor) -> Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def build_variants(name: str, jit: bool, notes: list[str]) -> dict[str, Variant]:
    """Every eager variant of ``name`` with one set of weights (see the module docstring)."""
    converter = registry_core.get_converter("torchvision", name)
    torch.manual_seed(0)  # the same random weights on every run
    ours = registry_core.create(name, **converter.create_kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's notes on weights=None initialisation
        theirs = torchvision.models.get_model(converter.source_name, weights=None, **converter.source_kwargs)
    settle_batchnorms(theirs, ours.meta.input_size)
    draw_zero_classifier(theirs)
    ours.load_state_dict(converter.to_ours(theirs.state_dict()), strict=True)
    ours.eval()
    theirs_cl = copy.deepcopy(theirs).to(memory_format=torch.channels_last)
    variants = {BASELINE: Variant(theirs), f"{BASELINE}+cl": Variant(theirs_cl, channels_last)}
    timm_model = build_timm(name, ours, notes)
    if timm_model is not None:
        # torchvision's transform_input rescales the input before its first layer; timm's
        # model has no such step, so it gets the rescaled batch to compute the same thing
        rescale = getattr(theirs, "_transform_input", None) if getattr(theirs, "transform_input", False) else None
        variants["timm"] = Variant(timm_model, rescale or (lambda x: x))
        if rescale is not None:
            notes.append(f"{name}: timm gets the input as torchvision's transform_input rescales it (untimed)")
    variants["ours"] = Variant(ours)
    variants["ours fused"] = Variant(copy.deepcopy(ours).fuse())
    variants["ours fused+cl"] = Variant(copy.deepcopy(ours).fuse(channels_last=True), channels_last)
    if jit:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript's deprecation notices
            scripted = torch.jit.script(copy.deepcopy(ours).fuse(channels_last=True))
            variants["ours fused+cl jit"] = Variant(torch.jit.optimize_for_inference(scripted), channels_last)
    return variants


def settle_batchnorms(model: nn.Module, size: tuple[int, ...]) -> None:
    """Give every BatchNorm the statistics of one random batch, as training would, and put
    ``model`` in eval mode. With fresh statistics, random weights shrink the activations
    layer by layer until some models' logits are their bias alone, and the output
    difference would compare nothing."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average: after one batch, exactly its statistics
    model.train()
    with torch.no_grad():
        model(torch.randn(4, *size))
    for bn in norms:
        bn.momentum = 0.1
    model.eval()


def draw_zero_classifier(model: nn.Module) -> None:
    """Draw the last linear layer's weights from N(0, 0.01) where the library starts them at
    zero (torchvision's ViT), so the outputs depend on every layer and the differences mean something."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    if not last.weight.any():
        with torch.no_grad():
            last.weight.normal_(0, 0.01, generator=torch.Generator().manual_seed(0))


def build_timm(name: str, ours: nn.Module, notes: list[str]) -> nn.Module | None:
    """timm's model of ``name``'s architecture with our weights converted into its layout,
    or its own random weights where no converter fits; None where timm has no such architecture."""
    known = f"timm/{name}" in registry_core.list_converters()
    timm_name = registry_core.get_converter("timm", name).source_name if known else name
    if not timm.is_model(timm_name):
        notes.append(f"{name}: skipped timm, which has no such architecture")
        return None
    model = timm.create_model(timm_name, pretrained=False, num_classes=ours.num_classes).eval()
    try:
        converter = registry_core.get_converter("timm", name)
        # timm's layout may lack parts ours has (an auxiliary head): convert only what it holds
        wanted = converter.to_ours(model.state_dict()).keys()
        model.load_state_dict(converter.from_ours({k: v for k, v in ours.state_dict().items() if k in wanted}), strict=True)
    except (RegistryCoreError, RuntimeError) as exc:  # no converter, or one whose keys do not fit
        notes.append(f"{name}: timm keeps random weights of its own ({type(exc).__name__}: {exc})"[:200])
    return model


def compiled(variants: dict[str, Variant]) -> dict[str, Variant]:
    """``torch.compile`` of each variant; compiling happens on the first call (the warmup).
    A module that compile refuses up front (a ScriptModule) fails on that call instead."""
    out = {}
    for label, v in variants.items():
        try:
            model = torch.compile(v.model)
        except Exception as exc:  # reported as n/a by time_variants
            model = refused(exc)
        out[f"{label} compiled"] = v._replace(model=model)
    return out


def refused(exc: Exception) -> Callable[[Tensor], Tensor]:
    def run(x: Tensor) -> Tensor:
        raise exc

    return run


class Timing(NamedTuple):
    median: float  # seconds per batch
    best: float
    difference: float  # max |output - torchvision's output|


def time_variants(variants: dict[str, Variant], x: Tensor, reps: int, warmup: int,
                  clock: Callable[[], float]) -> tuple[dict[str, Timing | None], float]:
    """Each variant's timing, taken alternately (None for a variant that fails to run, such
    as a compile error), and the largest |output| of torchvision's model."""
    inputs = {label: v.prepare(x) for label, v in variants.items()}
    with torch.inference_mode():
        reference = variants[BASELINE].model(x)
        differences: dict[str, float] = {}
        for label, v in variants.items():
            try:
                out = v.model(inputs[label])
                for _ in range(warmup - 1):
                    v.model(inputs[label])
            except Exception as exc:  # a variant that cannot run (a compile error) is reported as n/a
                print(f"# {label} at batch {x.shape[0]} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
                continue
            differences[label] = (out - reference).abs().max().item()
        times: dict[str, list[float]] = {label: [] for label in differences}
        for rep in range(reps):
            order = list(differences)
            for label in order if rep % 2 == 0 else reversed(order):
                start = clock()
                variants[label].model(inputs[label])
                times[label].append(clock() - start)
    timings = {label: Timing(statistics.median(times[label]), min(times[label]), differences[label]) if label in differences
               else None for label in variants}
    return timings, reference.abs().max().item()


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    print(
        f"# {platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"torchvision {torchvision.__version__}, timm {timm.__version__}; batch sizes {args.batch_sizes}, {args.reps} reps, "
        f"{args.clock} clock; load average at start {os.getloadavg()[0]:.2f}"
    )
    rows = [["model", "batch", "variant", "img/s", "vs torchvision", "best vs torchvision", "max |diff| of max |out|"]]
    notes: list[str] = []
    registered, converters = set(registry_core.list_models()), set(registry_core.list_converters())
    for name in args.models:
        if name not in registered or f"torchvision/{name}" not in converters:
            notes.append(f"{name}: skipped, " + ("no torchvision converter to share weights with" if name in registered
                                                 else "not registered (no plugin provides it yet)"))
            continue
        variants = build_variants(name, args.jit, notes)
        if args.compile:
            variants.update(compiled(variants))
        size = variants["ours"].model.meta.input_size  # type: ignore[attr-defined]
        for batch in args.batch_sizes:
            x = torch.randn(batch, *size, generator=torch.Generator().manual_seed(0))
            timings, scale = time_variants(variants, x, args.reps, args.warmup, clock)
            base = timings[BASELINE]
            assert base is not None
            for label, t in timings.items():
                if t is None:
                    rows.append([name, str(batch), label, "n/a", "n/a", "n/a", "n/a"])
                    continue
                rows.append([name, str(batch), label, f"{batch / t.median:.2f}", f"{base.median / t.median:.2f}x",
                             f"{base.best / t.best:.2f}x", f"{t.difference:.1e} of {scale:.1e}"])
        del variants
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    rows.insert(1, ["-" * w for w in widths])
    for row in rows:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |")
    for note in notes:
        print(f"# {note}")
    print(f"# load average at end {os.getloadavg()[0]:.2f}: other processes on the machine add noise (to every variant alike)")


if __name__ == "__main__":
    main()
