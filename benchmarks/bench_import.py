"""Start-up cost: `import registry_core; list_models()` beside timm and torchvision.

Each case runs in a fresh Python process (that is what a user waits for), the cases
interleaved so that machine noise hits all of them alike; we print medians and the
ratio of each to ours. A baseline `import torch` shows how much is torch's alone.

    python benchmarks/bench_import.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CASES = {
    "registry_core + list_models()": "import registry_core; registry_core.list_models()",
    "timm + timm.list_models()": "import timm; timm.list_models()",
    "import torchvision": "import torchvision",
    "import torch (baseline)": "import torch",
}


def time_process(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    for code in CASES.values():  # warm the file cache once
        time_process(code)
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.runs):
        for name, code in CASES.items():
            times[name].append(time_process(code))
    ours = statistics.median(times["registry_core + list_models()"])
    print(f"{'case':<32} {'median s':>9} {'vs ours':>8}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:<32} {median:9.3f} {median / ours:7.2f}x")


if __name__ == "__main__":
    main()
