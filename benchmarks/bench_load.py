"""Loading pretrained weights: ``create(name, weights=file)`` against torchvision's usual path.

torchvision's path builds the model (random initialisation), reads the checkpoint with
``torch.load(weights_only=True)`` and copies it in with ``load_state_dict``. Ours builds
on the meta device and assigns tensors memory-mapped from a safetensors file. Both load
the same numbers (our file is converted from the same random-weight checkpoint).

Timed twice, interleaved, several runs each, medians and ratios:
  in-process   after imports, in this process;
  whole        a fresh Python process per load, start to exit (imports included),
               which also reports peak memory above the process before loading.

    python benchmarks/bench_load.py [--model resnext101_32x8d] [--runs 5] [--process-runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import registry_core

# Each child prints JSON: seconds spent loading, and resident memory (MB) before loading,
# at its peak after loading, and at its peak after touching every weight once.
CHILD_PRELUDE = """
import json, sys, time
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
"""
CHILD_REPORT = """
peak_loaded = status("VmHWM")
total = sum(float(t.sum()) for t in model.state_dict().values() if t.is_floating_point() and not t.is_meta)
print(json.dumps({"load_s": loaded - start, "before_mb": before, "peak_loaded_mb": peak_loaded,
                  "peak_touched_mb": status("VmHWM"), "torchvision_imported": "torchvision" in sys.modules}))
"""
OURS = CHILD_PRELUDE + """
import registry_core
registry_core.list_models()  # plugins load here, not in the timed part
before = status("VmRSS"); start = time.perf_counter()
model = registry_core.create(name, weights=path)
loaded = time.perf_counter()
""" + CHILD_REPORT
EMPTY = CHILD_PRELUDE + """
import registry_core
from registry_core.model.compose import meta_device
registry_core.list_models()
before = status("VmRSS"); start = time.perf_counter()
with meta_device():
    model = registry_core.create(name)
loaded = time.perf_counter()
""" + CHILD_REPORT
THEIRS = CHILD_PRELUDE + """
import torch, torchvision
before = status("VmRSS"); start = time.perf_counter()
model = torchvision.models.get_model(name, weights=None)
model.load_state_dict(torch.load(path, weights_only=True))
loaded = time.perf_counter()
""" + CHILD_REPORT


def prepare(name: str, folder: Path) -> tuple[Path, Path, float]:
    """Our file and torchvision's checkpoint of the same random weights; their size in MB."""
    converter = registry_core.get_converter("torchvision", name)
    torch.manual_seed(0)
    model = registry_core.create(name)
    ours, theirs = folder / f"{name}.safetensors", folder / f"{name}.pth"
    registry_core.save(model, ours)
    torch.save(converter.from_ours(model.state_dict()), theirs)
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 2**20
    return ours, theirs, size


def torchvision_load(name: str, checkpoint: Path):
    import torchvision

    model = torchvision.models.get_model(name, weights=None)
    model.load_state_dict(torch.load(checkpoint, weights_only=True))
    return model


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def in_process(name: str, ours: Path, theirs: Path, runs: int) -> tuple[list[float], list[float]]:
    ours_times, theirs_times = [], []
    torchvision_load(name, theirs)  # warm caches and imports
    registry_core.create(name, weights=ours)
    for _ in range(runs):
        ours_times.append(timed(lambda: registry_core.create(name, weights=ours)))
        theirs_times.append(timed(lambda: torchvision_load(name, theirs)))
    return ours_times, theirs_times


def whole_process(code: str, name: str, path: Path) -> tuple[float, dict]:
    code = f"name, path = {name!r}, {str(path)!r}\n" + code
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return time.perf_counter() - start, json.loads(done.stdout.strip().splitlines()[-1])


def median(values) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnext101_32x8d")
    parser.add_argument("--runs", type=int, default=5, help="in-process runs of each path")
    parser.add_argument("--process-runs", type=int, default=3, help="fresh-process runs of each path")
    args = parser.parse_args()
    name = args.model
    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs, size = prepare(name, Path(tmp))
        print(f"{name}: {size:.0f} MB of weights; torch {torch.__version__}, {torch.get_num_threads()} threads")

        ours_t, theirs_t = in_process(name, ours, theirs, args.runs)
        print(f"\nin-process, after imports, median of {args.runs} interleaved runs:")
        print(f"  torchvision (build, torch.load, load_state_dict)  {median(theirs_t):7.3f} s")
        print(f"  registry-core create(name, weights=file)          {median(ours_t):7.3f} s")
        print(f"  ratio ours / torchvision                           {median(ours_t) / median(theirs_t):7.3f}  (goal <= 0.10)")

        results = {"ours": [], "theirs": []}
        for _ in range(args.process_runs):
            results["ours"].append(whole_process(OURS, name, ours))
            results["theirs"].append(whole_process(THEIRS, name, theirs))
        print(f"\nwhole process (start to exit, imports included), median of {args.process_runs} interleaved runs:")
        wall = {k: median(t for t, _ in v) for k, v in results.items()}
        print(f"  torchvision    {wall['theirs']:7.3f} s")
        print(f"  registry-core  {wall['ours']:7.3f} s   (imported torchvision: {results['ours'][0][1]['torchvision_imported']})")
        print(f"  ratio ours / torchvision  {wall['ours'] / wall['theirs']:7.3f}  (goal <= 0.15)")

        empty = whole_process(EMPTY, name, ours)[1]
        print(f"\npeak memory above the process before loading, MB (weights: {size:.0f} MB), median:")
        print(f"  {'empty model':<14} (built on the meta device) {empty['peak_loaded_mb'] - empty['before_mb']:7.0f}")
        for label, key in (("torchvision", "theirs"), ("registry-core", "ours")):
            reports = [r for _, r in results[key]]
            loaded = median(r["peak_loaded_mb"] - r["before_mb"] for r in reports)
            touched = median(r["peak_touched_mb"] - r["before_mb"] for r in reports)
            print(f"  {label:<14} after loading {loaded:7.0f}   after touching every weight {touched:7.0f}"
                  f"   ({touched / size:.2f} copies)")


if __name__ == "__main__":
    main()
