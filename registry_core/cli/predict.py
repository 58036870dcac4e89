"""``predict``: label image files with a weights file, an exported ONNX file or a model's pretrained weights."""

from __future__ import annotations

import json
import sys

from ..arguments import check_options
from ..inference.extras import RUNTIMES, require


def add_commands(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="label images with a weights file, an exported .onnx file or a model's pretrained weights",
        description="Print each image's most probable classes. The preprocessing and the class names come from "
        "the weights file (or the .onnx file). IMAGE is a file, a folder (its image files, sorted) or a quoted glob "
        "pattern ('photos/**/*.jpg'). With --runtime onnxruntime, a weights file or model is exported to ONNX once, "
        "into the cache under $REGISTRY_CORE_HOME/onnx, and that file is reused.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="an image file, a folder of images or a glob pattern")
    p.add_argument("--weights", metavar="FILE", help="a weights file (it names its model), or an .onnx file export wrote")
    p.add_argument("--model", metavar="NAME[.TAG]", help="a registered model (with --pretrained: the store's weights for it)")
    p.add_argument("--pretrained", action="store_true", help="use the store's weights for --model")
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="classes shown per image (default 5)")
    p.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default 32)")
    p.add_argument("--runtime", choices=RUNTIMES, default=None,
                   help="run on torch or on ONNX Runtime (default: onnxruntime for an .onnx file, torch otherwise)")
    p.add_argument("--device", default=None,
                   help="cpu, cuda, cuda:1 ... (default: torch on the GPU if there is one; onnxruntime on the CPU)")
    p.add_argument("--json", action="store_true", help="print a JSON list of {image, predictions} instead of a table")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    if args.pretrained and not args.model:
        raise ValueError("--pretrained needs --model NAME")
    if not args.weights and not (args.model and args.pretrained):
        raise ValueError("say which weights to use: --weights FILE, or --model NAME --pretrained")
    if args.pretrained and args.weights:
        raise ValueError("give --weights FILE or --pretrained, not both")
    check_options(args, {"top_k": {"minimum": 1, "maximum": 1_000_000, "integer": True},
                         "batch_size": {"minimum": 1, "maximum": 65536, "integer": True}})
    onnx_file = bool(args.weights) and args.weights.lower().endswith(".onnx")
    if onnx_file and args.model:
        raise ValueError("an .onnx file names its own model: give --weights FILE.onnx without --model")
    if onnx_file and args.runtime == "torch":
        raise ValueError(f"{args.weights} is an ONNX file: it runs with --runtime onnxruntime, not torch")
    runtime = "onnxruntime" if onnx_file else args.runtime or "torch"
    if runtime == "onnxruntime":
        require(["onnxruntime"] if onnx_file else ["onnx", "onnxscript", "onnxruntime"], "--runtime onnxruntime")
    from ..inference.predict import find_images, predict

    found = find_images(args.images)  # before loading a model: a typo fails at once
    for source, count in found.skipped.items():
        print(f"{source}: skipped {count} non-image file{'s' if count != 1 else ''}", file=sys.stderr)
    model = _onnx_model(args, onnx_file) if runtime == "onnxruntime" else _torch_model(args)
    results = predict(model, found.files, top_k=args.top_k, batch_size=args.batch_size)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
    else:
        print(table(results))
    return 0


def _torch_model(args):
    import torch

    from ..factory.create import create, load

    model = create(args.model, weights=args.weights, pretrained=args.pretrained) if args.model else load(args.weights)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return model.to(device)
    except (RuntimeError, AssertionError) as exc:  # an unknown device, or CUDA asked for without it
        raise ValueError(f"cannot run on device {device!r}: {str(exc).splitlines()[0]}") from None


def _onnx_model(args, onnx_file: bool):
    """The .onnx file given, or the cached export of the weights file or model (made now if
    this is its first use, and said so)."""
    from ..inference.runtime import OnnxModel, cached_onnx

    path, source = args.weights, args.weights
    if not onnx_file:
        if args.model:
            from ..factory.create import create

            source = create(args.model, weights=args.weights, pretrained=args.pretrained)
        path, created = cached_onnx(source)
        if created:
            print(f"exported {args.model or args.weights} to {path} (once: later runs reuse it)", file=sys.stderr)
    return OnnxModel(path, device=args.device or "cpu")


def table(results) -> str:
    """One row per class shown, the image named on its first row."""
    rows = [("image", "#", "label", "probability")]
    for result in results:
        rows += [(result.image if rank == 1 else "", str(rank), score.label, f"{100 * score.probability:.2f}%")
                 for rank, score in enumerate(result.top, 1)]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:<{widths[2]}}  {d:>{widths[3]}}".rstrip() for a, b, c, d in rows)
