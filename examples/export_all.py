"""Export every registered model (random weights) to every format, check each, and time it.

The test suite exports a few models of each family; this script covers the rest, a third
party's models included, at the cost of minutes. Artifacts go to a temporary folder and are
deleted as it goes. Nothing is downloaded.

    python examples/export_all.py                   # every model, every format
    python examples/export_all.py 'resnet*' --format onnx
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import tempfile
import time
from pathlib import Path

import torch

import registry_core
from registry_core.inference.export import FORMATS, SUFFIXES, export


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style pattern of model names")
    parser.add_argument("--format", action="append", choices=FORMATS, help="a format to try (repeatable; default all)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    formats = args.format or list(FORMATS)
    names = [n for n in registry_core.list_models() if fnmatch.fnmatchcase(n, args.pattern)]
    totals = dict.fromkeys(formats, 0.0)
    failures = []
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            torch.manual_seed(0)
            model = registry_core.create(name)
            for fmt in formats:
                out = Path(folder) / f"{name}{SUFFIXES[fmt]}"
                start = time.perf_counter()
                try:
                    result = export(model, out, format=fmt)
                    outcome = f"{result.method}; {result.check_summary()}"
                except registry_core.RegistryCoreError as exc:
                    outcome = f"FAILED: {exc}"
                    failures.append(f"{name} {fmt}")
                seconds = time.perf_counter() - start
                totals[fmt] += seconds
                print(f"{name:<20} {fmt:<12} {seconds:6.1f}s  {outcome}", flush=True)
                out.unlink(missing_ok=True)
    print(f"{len(names)} models, torch threads {torch.get_num_threads()}: "
          + ", ".join(f"{fmt} {seconds:.0f}s" for fmt, seconds in totals.items()))
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
