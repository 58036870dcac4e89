"""``benchmark``: a model's inference and training throughput in each variant, against torchvision and timm."""

from __future__ import annotations

import json

from ..inference.bench_settings import CLOCKS, DEFAULT_VARIANTS, MODES, VARIANTS, BenchmarkSettings


def add_commands(sub) -> None:
    p = sub.add_parser(
        "benchmark",
        help="images/s of a model in each variant (eager, channels_last, fused, compiled, ONNX Runtime, int8) "
        "against torchvision and timm",
        description="Time MODEL's inference and training in each variant, and torchvision's and timm's model of the "
        "same name, in one process with the same weights where converters allow. Variants are timed in turn, "
        "repetition by repetition; each figure is a median and each ratio is to torchvision eager (else timm, else "
        "ours eager) in the same group. A variant that cannot run here is listed with the reason.",
    )
    p.add_argument("model", metavar="MODEL", help="a registered model name")
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8], metavar="N", help="(default: 1 8)")
    p.add_argument("--image-sizes", nargs="+", type=int, default=[], metavar="PIXELS",
                   help="sides of the square input (default: the model's eval size)")
    p.add_argument("--modes", nargs="+", default=list(MODES), metavar="MODE", help="inference, train (default: both)")
    p.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS), metavar="VARIANT",
                   help=f"any of {', '.join(VARIANTS)} (default: all but torchvision+cl and compiled, which takes minutes "
                        "to compile)")
    p.add_argument("--reps", type=int, default=5, help="timed repetitions per variant (default 5)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per variant first (default 2)")
    p.add_argument("--min-time", type=float, default=0.05, metavar="SECONDS",
                   help="a repetition repeats a fast variant's call until it lasts this long (default 0.05)")
    p.add_argument("--calibrate", metavar="FOLDER", help="images to calibrate int8 on (default: seeded random images)")
    p.add_argument("--threads", type=int, default=None, help="torch and ONNX Runtime threads (default: torch's choice)")
    p.add_argument("--clock", choices=CLOCKS, default="wall",
                   help="wall time, or this process's CPU time (steadier on a busy machine); default wall")
    p.add_argument("--device", default="cpu", help="cpu or cuda (ONNX Runtime variants run on the CPU only)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_benchmark)


def cmd_benchmark(args) -> int:
    settings = BenchmarkSettings(batch_sizes=tuple(args.batch_sizes), image_sizes=tuple(args.image_sizes),
                                 modes=tuple(args.modes), variants=tuple(dict.fromkeys(args.variants)), reps=args.reps,
                                 warmup=args.warmup, min_time=args.min_time, calibrate=args.calibrate,
                                 threads=args.threads, clock=args.clock, device=args.device)
    settings.validate()  # before torch is imported
    from ..inference.benchmark import benchmark

    report = benchmark(args.model, settings)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(text(report))
    return 0


def text(report) -> str:
    """The report as a table, with the conditions above it and what was not timed below."""
    env, settings = report.environment, report.settings
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    lines = [f"# {report.model} on {env['machine']} ({env['cpu_count']} cores), {env['torch_threads']} torch threads, "
             f"{env['device']}; {versions}; {settings.clock} clock, {settings.reps} reps, median; load average "
             f"{env['load_average_start']} at start, {env['load_average_end']} at end"]
    rows = [["mode", "size", "batch", "variant", "img/s", "ratio", "best ratio", "cosine"]]
    for m in report.measurements:
        ratio = f"{m.ratio:.2f}x" + (f" ({m.baseline})" if m.variant == m.baseline else "")
        rows.append([m.mode, str(m.image_size), str(m.batch), m.variant, f"{m.images_per_s:,.1f}", ratio,
                     f"{m.best_ratio:.2f}x", "-" if m.cosine is None else f"{m.cosine:.4f}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    rows.insert(1, ["-" * w for w in widths])
    lines += ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |" for row in rows]
    reasons: dict[tuple[str, str], list[str]] = {}
    for s in report.skipped:
        reasons.setdefault((s.variant, s.reason), []).append(s.mode)
    lines += [f"# not timed: {variant} ({', '.join(modes)}): {reason}" for (variant, reason), modes in reasons.items()]
    source = settings.calibrate or "seeded random images"
    lines += [f"# int8 at {size}px, calibrated on {source}: {r.summary()}" for size, r in report.quantization.items()]
    lines += [f"# {note}" for note in report.notes]
    return "\n".join(lines)
