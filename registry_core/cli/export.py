"""``export``: a weights file (or a model with random weights) as TorchScript, a torch.export program, ONNX or int8 ONNX."""

from __future__ import annotations

from typing import Any

from ..arguments import MAX_IMAGE_SIDE, check_options

FORMAT_CHOICES = "torchscript|exported|onnx"


def add_commands(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export a model for serving: TorchScript, torch.export (.pt2) or ONNX",
        description="Write MODEL as one file that runs without registry-core, then load it back and compare its "
        "outputs with the model's on a seeded input. The file records the model's name, weight tag, data config "
        "and class names. The batch dimension stays free unless --batch-size fixes it. --quantize int8 --calibrate "
        "FOLDER writes a statically quantised ONNX model, checked against the fp32 one on held-out images from FOLDER.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", metavar="FILE",
                        help="a registry-core .safetensors weights file (with --quantize: or an fp32 .onnx file export wrote)")
    source.add_argument("--model", metavar="NAME", help="a registered model with random weights, to try the pipeline")
    p.add_argument("--format", default=None, metavar=FORMAT_CHOICES,
                   help="torchscript (script, or trace where scripting fails), exported (torch.export .pt2) or "
                        "onnx (needs registry-core[onnx]); default torchscript")
    p.add_argument("--out", required=True, metavar="PATH", help="the file to write, e.g. model.pt, model.pt2, model.onnx")
    p.add_argument("--no-check", action="store_true", help="do not load the file back and compare outputs")
    p.add_argument("--image-size", type=int, default=None, metavar="PIXELS",
                   help="side of the input the graph is captured and checked at (default: the model's eval size)")
    p.add_argument("--batch-size", type=int, default=None, metavar="N", help="fix the batch to N (default: free)")
    p.add_argument("--atol", type=float, default=None, help="absolute part of the allowed difference (default 1e-4)")
    p.add_argument("--rtol", type=float, default=None,
                   help="part of the largest output added to the allowed difference (default 1e-5)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    q = p.add_argument_group("int8 quantisation (ONNX Runtime's static quantisation: QDQ, per-channel int8 weights)")
    q.add_argument("--quantize", choices=["int8"], default=None, help="write an int8 ONNX model (implies --format onnx)")
    q.add_argument("--calibrate", metavar="FOLDER", help="images to calibrate on; some are held out to check the result")
    q.add_argument("--held-out", type=float, default=None, metavar="SHARE",
                   help="share of the images held out to check (every k-th, sorted; default 0.2)")
    q.add_argument("--min-agreement", type=float, default=None, metavar="SHARE",
                   help="refuse below this top-1 agreement with fp32 on the held-out images (default 0.9)")
    q.add_argument("--min-cosine", type=float, default=None, metavar="VALUE",
                   help="refuse below this mean cosine similarity of the logits (default 0.98)")
    p.set_defaults(func=cmd_export)


OPSETS = (7, 99)  # ONNX's opsets begin at 7; the exporter refuses one it does not know, in its own words
NUMBERS: dict[str, dict[str, Any]] = {
    "image_size": {"minimum": 1, "maximum": MAX_IMAGE_SIDE, "integer": True},
    "batch_size": {"minimum": 1, "maximum": 65536, "integer": True},
    "atol": {"minimum": 0}, "rtol": {"minimum": 0},
    "opset": {"minimum": OPSETS[0], "maximum": OPSETS[1], "integer": True},
    "held_out": {"above": 0, "maximum": 0.9}, "min_agreement": {"minimum": 0, "maximum": 1},
    "min_cosine": {"minimum": -1, "maximum": 1},
}


def cmd_export(args) -> int:
    check_options(args, NUMBERS)
    if args.quantize or args.calibrate:
        return _quantized(args)
    if any(v is not None for v in (args.held_out, args.min_agreement, args.min_cosine)):
        raise ValueError("--held-out, --min-agreement and --min-cosine go with --quantize int8")
    args.format = args.format or "torchscript"
    from ..inference.export import DEFAULT_ATOL, DEFAULT_RTOL, export, validate_request

    validate_request(args.format, args.out, check=not args.no_check, batch_size=args.batch_size)  # before any model is built
    if args.weights:
        source, what = args.weights, args.weights
    else:
        from ..factory.create import create

        source, what = create(args.model), f"{args.model} (random weights)"
    result = export(source, args.out, format=args.format, check=not args.no_check, batch_size=args.batch_size,
                    image_size=args.image_size, atol=DEFAULT_ATOL if args.atol is None else args.atol,
                    rtol=DEFAULT_RTOL if args.rtol is None else args.rtol, opset=args.opset)
    print(f"wrote {result.path}: {what} as {result.format} via {result.method}, input {result.shape_summary()}")
    if result.note:
        print(f"note: {result.note}")
    print(f"check: {result.check_summary() if result.max_abs_diff is not None else 'skipped (--no-check)'}")
    return 0


def _quantized(args) -> int:
    if not (args.quantize and args.calibrate):
        raise ValueError("--quantize int8 needs --calibrate FOLDER (images to calibrate on), and --calibrate needs --quantize")
    if args.format not in (None, "onnx"):
        raise ValueError(f"--quantize int8 writes ONNX; it cannot be combined with --format {args.format}")
    if args.image_size is not None:
        raise ValueError("--quantize int8 works at the model's eval size, the size its calibration images are prepared at; "
                         "drop --image-size")
    onnx_file = bool(args.weights) and args.weights.lower().endswith(".onnx")
    from ..inference.quantize import DEFAULT_HELD_OUT, DEFAULT_MIN_AGREEMENT, DEFAULT_MIN_COSINE, validate_quantize_request

    thresholds = {"held_out": DEFAULT_HELD_OUT if args.held_out is None else args.held_out,
                  "min_agreement": DEFAULT_MIN_AGREEMENT if args.min_agreement is None else args.min_agreement,
                  "min_cosine": DEFAULT_MIN_COSINE if args.min_cosine is None else args.min_cosine}
    validate_quantize_request(args.quantize, args.calibrate, args.out, batch_size=args.batch_size, exporting=not onnx_file,
                              **thresholds)
    from ..inference.quantize import quantize

    if args.model:
        from ..factory.create import create

        source, what = create(args.model), f"{args.model} (random weights)"
    else:
        source, what = args.weights, args.weights
    result = quantize(source, args.out, calibrate=args.calibrate, check=not args.no_check, batch_size=args.batch_size,
                      atol=args.atol, rtol=args.rtol, opset=args.opset, **thresholds)
    print(f"wrote {result.path}: {what} as int8 onnx via {result.method}, input {result.shape_summary()}")
    if not onnx_file:
        print(f"check (fp32 export): {result.check_summary() if result.max_abs_diff is not None else 'skipped (--no-check)'}")
    print(f"int8 against fp32: {result.quantization.summary()}")
    return 0
