"""Start-up cost of answering "what models are there?": registry-core beside timm and torchvision.

Each case runs in a fresh process (that is what a user waits for), the cases
interleaved so that machine noise hits all of them alike; we print medians and each
case's ratio to timm's. "warm" cases reuse the manifest that registry-core keeps in its
home folder; "cold" ones start from an empty home folder, so they include building it
(loading every plugin and counting every model's parameters, once per change of
installed plugins; FLOPs are counted only when asked for). A baseline `import torch`
shows what torch alone costs, and a refusal of `train` (an unknown model, answered
before torch is imported) is compared with it.

    python benchmarks/bench_import.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = str(Path(sys.executable).with_name("registry-core"))
PY = [sys.executable, "-c"]
CASES = {
    "registry-core list (warm)": ([CLI, "list"], "warm"),
    "registry-core info resnet50 (warm)": ([CLI, "info", "resnet50"], "warm"),
    "registry_core.list_models() (warm)": ([*PY, "import registry_core; registry_core.list_models()"], "warm"),
    "registry-core list (cold)": ([CLI, "list"], "cold"),
    "timm.list_models()": ([*PY, "import timm; timm.list_models()"], None),
    "torchvision.models.list_models()": ([*PY, "import torchvision; torchvision.models.list_models()"], None),
    "import torch (baseline)": ([*PY, "import torch"], None),
    "train refusal (unknown model)": ([CLI, "train", "--model", "no_such_model", "--dataset", "digits", "--out", "-"],
                                      "warm"),
}
BASELINE = "import torch (baseline)"
REFERENCE = "timm.list_models()"


def time_process(argv: list[str], home: str) -> float:
    env = {**os.environ, "REGISTRY_CORE_HOME": home}
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if done.returncode not in (0, 2):  # 2: the refusal case refuses, as it should
        raise SystemExit(f"{' '.join(argv)} failed with exit code {done.returncode}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-import-"))
    warm = str(root / "warm")
    try:
        for argv, _ in CASES.values():  # warm the file cache and the warm manifest once
            time_process(argv, warm)
        times: dict[str, list[float]] = {name: [] for name in CASES}
        for run in range(args.runs):
            for name, (argv, manifest) in CASES.items():
                home = str(root / f"cold-{run}") if manifest == "cold" else warm
                times[name].append(time_process(argv, home))
        reference, torch_alone = statistics.median(times[REFERENCE]), statistics.median(times[BASELINE])
        print(f"{'case':<38} {'median s':>9} {'vs timm':>8} {'vs import torch':>16}")
        for name, samples in times.items():
            median = statistics.median(samples)
            print(f"{name:<38} {median:9.3f} {median / reference:7.2f}x {median / torch_alone:15.2f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
