"""``export``: a weights file (or a model with random weights) as TorchScript, a torch.export program or ONNX."""

from __future__ import annotations

FORMAT_CHOICES = "torchscript|exported|onnx"


def add_commands(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export a model for serving: TorchScript, torch.export (.pt2) or ONNX",
        description="Write MODEL as one file that runs without registry-core, then load it back and compare its "
        "outputs with the model's on a seeded input. The file records the model's name, weight tag, data config "
        "and class names. The batch dimension stays free unless --batch-size fixes it.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", metavar="FILE", help="a registry-core .safetensors weights file")
    source.add_argument("--model", metavar="NAME", help="a registered model with random weights, to try the pipeline")
    p.add_argument("--format", default="torchscript", metavar=FORMAT_CHOICES,
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
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
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
