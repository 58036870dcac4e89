"""``convert``, ``weights`` and ``identify``: moving weights between torchvision / timm
checkpoints and our files, the catalogue of weight tags, and recognising a checkpoint."""

from __future__ import annotations

import json

from ..arguments import MAX_IMAGE_SIDE, check_options
from ..files import refuse_folder
from ..weights.validate import shown


def add_commands(sub) -> None:
    p = sub.add_parser(
        "convert",
        help="convert a torchvision/timm checkpoint to our weights file, or back",
        description="Run the registered converter for MODEL. --from reads the other library's checkpoint "
        "(.safetensors, or .pth/.pt/.bin/.ckpt/.pth.tar read with weights_only=True; training checkpoints are "
        "unwrapped) and writes our safetensors file, its class count and input channels taken from the file; "
        "--to exports our file to the other library's layout. When that library is installed, both models "
        "are built the same way and their eval outputs compared on a seeded input.",
    )
    direction = p.add_mutually_exclusive_group(required=True)
    direction.add_argument("--from", dest="source", metavar="LIBRARY", help="convert from this library (torchvision, timm)")
    direction.add_argument("--to", dest="target", metavar="LIBRARY", help="export to this library (torchvision, timm)")
    p.add_argument("--model", help="our model name, e.g. resnet50 (with --from: found by `identify` when left out)")
    p.add_argument("--tag", help="the weight tag the checkpoint holds (e.g. tv2_in1k): the file then records its "
                   "preprocessing, class names and metrics (with --from: found by its hash when left out)")
    p.add_argument("--checkpoint", required=True, help="the file to convert")
    p.add_argument("--out", required=True, help="the file to write (.safetensors, or .pth with --to)")
    p.add_argument("--no-verify", action="store_true", help="do not compare outputs with the other library's model")
    p.add_argument("--verify-size", type=int, default=None, metavar="PIXELS",
                   help="input size for the comparison (default: the model's input size)")
    p.add_argument("--atol", type=float, default=None, help="largest allowed output difference (default 1e-4)")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default=None,
                   help="floating dtype of the written file (default: the checkpoint's own)")
    p.add_argument("--allow-non-finite", action="store_true", help="accept NaN or Inf in the checkpoint (refused by default)")
    p.add_argument("--ema", action="store_true", help="with --from: take a training checkpoint's EMA weights "
                   "(state_dict_ema or model_ema)")
    p.add_argument("--num-classes", type=int, default=None, metavar="N",
                   help="with --from: the classifier's size, when the file's shapes cannot say (rarely needed)")
    p.add_argument("--in-chans", type=int, default=None, metavar="N",
                   help="with --from: the input channels, when the file's shapes cannot say (rarely needed)")
    p.set_defaults(func=cmd_convert)
    p = sub.add_parser("weights", help="list weight tags: source, metrics and where the weights are (no torch needed)",
                       description="Every registered weight tag (model.tag) matching PATTERN, with its source library, "
                       "reported top-1/top-5, and whether it is in the store, in torchvision's or timm's cache "
                       "(converted on first use), or absent (and which file to place where).")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style pattern or a model name, e.g. 'resnet50*'")
    p.add_argument("--json", action="store_true", help="every listed tag's facts as JSON")
    p.set_defaults(func=cmd_weights)
    p = sub.add_parser("identify", help="recognise a checkpoint: its model, source library and weight tag",
                       description="Compare FILE's keys and shapes with every registered layout (torchvision, timm, "
                       "ours, third parties') and its sha256 with every registered tag's.")
    p.add_argument("file", help="a .pth/.pt/.bin/.ckpt/.pth.tar (read with weights_only=True) or .safetensors file")
    p.add_argument("--ema", action="store_true", help="look at a training checkpoint's EMA weights")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_identify)


def cmd_convert(args) -> int:
    check_options(args, {"verify_size": {"minimum": 1, "maximum": MAX_IMAGE_SIDE, "integer": True}, "atol": {"minimum": 0},
                         "num_classes": {"minimum": 0, "maximum": 1_000_000, "integer": True},
                         "in_chans": {"minimum": 1, "maximum": 4096, "integer": True}})
    from ..factory.conversion import DEFAULT_ATOL, convert_from, convert_to, verification_summary

    refuse_folder(args.out)  # before the conversion's work, not after it
    options = dict(verify=not args.no_verify, verify_size=args.verify_size, atol=DEFAULT_ATOL if args.atol is None else args.atol,
                   dtype=args.dtype, allow_non_finite=args.allow_non_finite)
    if args.source:
        provenance = convert_from(args.source, args.model, args.checkpoint, args.out, tag=args.tag, ema=args.ema,
                                  num_classes=args.num_classes, in_chans=args.in_chans, **options)
        from ..weights.safetensors_io import read_metadata

        header = read_metadata(args.out)
        tag = f".{header['tag']}" if header.get("tag") else ""
        sized = json.loads(header.get("create_kwargs", "{}"))  # the sizes taken from the file, where not the defaults
        sizes = ", ".join(([f"{sized['num_classes']} classes"] if "num_classes" in sized else [])
                          + ([f"{sized['in_chans']} input channel{'s' if sized['in_chans'] != 1 else ''}"]
                             if "in_chans" in sized else []))
        sizes = f" ({sizes})" if sizes else ""
        unwrapped = f"; unwrapped: {header['source_unwrapped']}" if header.get("source_unwrapped") else ""
        what = f"{args.source} {header['model']}{tag}{sizes} -> {args.out}{unwrapped}"
    else:
        if args.model is None:
            raise ValueError("--to needs --model")
        if args.ema or args.num_classes is not None or args.in_chans is not None:
            raise ValueError("--ema, --num-classes and --in-chans go with --from")
        provenance = convert_to(args.target, args.model, args.checkpoint, args.out, **options)
        what = f"{args.model} -> {args.target} layout in {args.out}"
    print(f"converted {what}; {verification_summary(provenance)}")
    return 0


def cmd_weights(args) -> int:
    from ..factory.tag_catalog import list_pretrained, pretrained_info

    infos = [pretrained_info(name) for name in list_pretrained(args.pattern)]
    if args.json:
        print(json.dumps(infos, indent=2))
        return 0
    if not infos:
        print(f"no weight tag matches {args.pattern!r}")
        return 0
    rows = [["name", "source", "top1", "top5", "eval", "status"]]
    for info in infos:
        metrics, data = info["metrics"], info["data_config"]
        size = (data["test_input_size"] or data["input_size"])[-1]
        rows.append([info["name"] + (" (default)" if info["default"] else ""),
                     ", ".join(s["library"] for s in info["sources"]),
                     f"{metrics['top1']:.2f}" if "top1" in metrics else "-", f"{metrics['top5']:.2f}" if "top5" in metrics else "-",
                     f"{size}px {data['interpolation']}", _status(info)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print("\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows))
    absent = [info for info in infos if info["status"] == "absent"]
    unverified = [info for info in infos if info["status"] == "store" and not info["verified"]]
    if absent and len(infos) == 1:
        print(f"to use it offline: {absent[0]['advice']}")
    elif absent:
        print(f"{len(absent)} tag(s) absent: `registry-core weights NAME` says which file to place where")
    if unverified and len(infos) == 1:
        print(f"unverified: {shown(unverified[0]['verification'], 400)}; the tag's published metrics are not shown as its own")
    elif unverified:
        print(f"{len(unverified)} stored file(s) unverified (their hash did not match the tag's): their metrics are "
              "not shown; `registry-core weights NAME` says why")
    return 0


def _status(info) -> str:
    if info["status"] == "store":
        return "stored" if info["verified"] else "stored, unverified"
    if info["status"] == "cache":
        return f"in {info['library']}'s cache (converted on first use)"
    return "absent"


def cmd_identify(args) -> int:
    from ..factory.identify import describe_miss, identify_checkpoint

    found = identify_checkpoint(args.file, ema=args.ema)
    if args.json:
        print(json.dumps(found.as_dict(), indent=2))
        return 0 if found.model else 1
    print(f"file      {shown(found.path, 400)}")
    print(f"sha256    {found.sha256}")
    if found.unwrapped:
        print(f"unwrapped {found.unwrapped}")
    if found.model is None:
        print(describe_miss(found).replace("; closest", "\nclosest"))
    else:
        print(f"model     {found.model}")
        print(f"layout    {found.source}")
        sizes = [f"{found.num_classes} classes" if found.num_classes is not None else "",
                 f"{found.in_chans} input channel{'s' if found.in_chans != 1 else ''}" if found.in_chans is not None else ""]
        if any(sizes):
            print(f"sizes     {', '.join(s for s in sizes if s)}")
        print(f"tag       {found.tag or 'unknown (no registered hash matches)'}")
    for note in found.notes:
        print(f"note      {note}")
    if found.convert_command():
        print(f"convert   {found.convert_command()}")
    return 0 if found.model else 1
