"""int8 on ONNX Runtime against torchvision eager fp32: speed and agreement, in one process.

Writes crops and flips of scikit-learn's two sample photographs to a temporary folder
(``sample_photos.py``), then runs ``registry-core benchmark`` on each model: inference at
the given batch sizes, variants torchvision eager, ours eager and fused+channels_last, our
fp32 ONNX export and its int8 quantisation calibrated on the photographs. The timed
batches are the held-out photographs, so the cosine column compares logits on images the
int8 model was not calibrated on. The issue's target for resnet50 at batch 8: int8 at
least 2.5x torchvision eager, logits' cosine similarity at least 0.98.

    python benchmarks/bench_int8.py [--models resnet50] [--batch-sizes 8] [--reps 7] [--photos 48]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from sample_photos import write_crops

import registry_core
from registry_core.cli.benchmark import text

TARGET_RATIO, TARGET_COSINE, TARGET_BATCH = 2.5, 0.98, 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["resnet50"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[8])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--photos", type=int, default=48, help="calibration images to write (default: %(default)s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        write_crops(Path(folder), args.photos)
        settings = registry_core.BenchmarkSettings(
            batch_sizes=tuple(args.batch_sizes), modes=("inference",), reps=args.reps, calibrate=folder,
            variants=("torchvision", "eager", "fused+cl", "onnxruntime", "int8"))
        for name in args.models:
            report = registry_core.benchmark(name, settings)
            print(text(report).replace(folder, f"<{args.photos} crops of the sample photographs>"))
            for m in report.measurements:
                if m.variant == "int8" and m.baseline == "torchvision":
                    met = m.ratio >= TARGET_RATIO and (m.cosine or 0) >= TARGET_COSINE
                    verdict = f"target {'met' if met else 'MISSED'}" if m.batch == TARGET_BATCH else "no target at this batch"
                    print(f"# {verdict}: int8 {m.ratio:.2f}x torchvision eager at batch {m.batch} (best reps "
                          f"{m.best_ratio:.2f}x; goal >= {TARGET_RATIO}x at batch {TARGET_BATCH}), cosine {m.cosine:.4f} "
                          f"(goal >= {TARGET_COSINE})")


if __name__ == "__main__":
    main()
