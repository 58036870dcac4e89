"""``convert``: move weights between torchvision / timm checkpoints and our safetensors files."""

from __future__ import annotations

from ..files import refuse_folder


def add_commands(sub) -> None:
    p = sub.add_parser(
        "convert",
        help="convert a torchvision/timm checkpoint to our weights file, or back",
        description="Run the registered converter for MODEL. --from reads the other library's checkpoint "
        "(.safetensors, or .pth/.pt/.bin read with weights_only=True) and writes our safetensors file; "
        "--to exports our file to the other library's layout. When that library is installed, both models "
        "are built and their eval outputs compared on a seeded input.",
    )
    direction = p.add_mutually_exclusive_group(required=True)
    direction.add_argument("--from", dest="source", metavar="LIBRARY", help="convert from this library (torchvision, timm)")
    direction.add_argument("--to", dest="target", metavar="LIBRARY", help="export to this library (torchvision, timm)")
    p.add_argument("--model", required=True, help="our model name, e.g. resnet50")
    p.add_argument("--checkpoint", required=True, help="the file to convert")
    p.add_argument("--out", required=True, help="the file to write (.safetensors, or .pth with --to)")
    p.add_argument("--no-verify", action="store_true", help="do not compare outputs with the other library's model")
    p.add_argument("--verify-size", type=int, default=None, metavar="PIXELS",
                   help="input size for the comparison (default: the model's input size)")
    p.add_argument("--atol", type=float, default=None, help="largest allowed output difference (default 1e-4)")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default=None,
                   help="floating dtype of the written file (default: the checkpoint's own)")
    p.add_argument("--allow-non-finite", action="store_true", help="accept NaN or Inf in the checkpoint (refused by default)")
    p.set_defaults(func=cmd_convert)


def cmd_convert(args) -> int:
    from ..factory.conversion import DEFAULT_ATOL, convert_from, convert_to, verification_summary

    refuse_folder(args.out)  # before the conversion's work, not after it
    options = dict(verify=not args.no_verify, verify_size=args.verify_size, atol=DEFAULT_ATOL if args.atol is None else args.atol,
                   dtype=args.dtype, allow_non_finite=args.allow_non_finite)
    if args.source:
        provenance = convert_from(args.source, args.model, args.checkpoint, args.out, **options)
        what = f"{args.source} {args.model} -> {args.out}"
    else:
        provenance = convert_to(args.target, args.model, args.checkpoint, args.out, **options)
        what = f"{args.model} -> {args.target} layout in {args.out}"
    print(f"converted {what}; {verification_summary(provenance)}")
    return 0
