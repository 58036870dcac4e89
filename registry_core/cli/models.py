"""``list``, ``info`` and ``plugins``: what the registry holds."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

INFO_KEY_WIDTH = 32
INFO_VALUE_CHARS = 2000


def add_commands(sub) -> None:
    p = sub.add_parser("list", help="list registered models (answered from the manifest, without importing torch)")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style pattern, e.g. 'resnet*'")
    p.add_argument("--family", help="only this family, e.g. resnet")
    p.add_argument("--plugin", help="only models from this plugin or distribution")
    p.add_argument("--max-params", type=_count, metavar="N", help="at most N parameters, e.g. 30M or 2.5e7")
    p.add_argument("--max-gflops", type=float, metavar="G", help="at most G GFLOPs (a multiply-add counts 2)")
    p.add_argument("--input-size", type=int, metavar="PIXELS", help="default input side, e.g. 224")
    p.add_argument("--pretrained", action="store_true", help="only models with a torchvision or timm converter")
    p.add_argument("--sort", choices=("name", "params", "gflops", "gmacs"), default="name",
                   help="gmacs (multiply-adds, torchvision's and timm's figure) orders as gflops; either adds the column")
    p.add_argument("--json", action="store_true", help="every listed model's info as JSON")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("info", help="describe a model, or a weights file's metadata")
    p.add_argument("name", help="a model name or a .safetensors file")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("plugins", help="list plugins, their versions, hooks and what they provided")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--check", nargs="*", metavar="NAME", default=None,
                   help="exit 1 if a plugin is broken, a name contested or a model unavailable (its spec names a "
                        "missing part); with NAMEs, also run the conformance kit on every component those plugins provide")
    p.set_defaults(func=cmd_plugins)


def _count(text: str) -> float:
    """'30M' -> 3e7; plain numbers pass through."""
    import argparse

    scale = {"K": 1e3, "M": 1e6, "G": 1e9}.get(text[-1:].upper(), 1)
    try:
        return float(text[:-1] if scale != 1 else text) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count such as 30M, 2.5e7 or 500K, got {text!r}") from None


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def cmd_list(args) -> int:
    import fnmatch

    from ..factory.catalog import list_contested

    names, infos = _described(args)
    if args.json:
        print(json.dumps(list(infos.values()), indent=2, default=str))
        return 0
    contested = [c for c in list_contested() if c["kind"] == "model" and fnmatch.fnmatchcase(c["name"], args.pattern)]
    for contest in contested:
        print(f"contested: {contest['text']}", file=sys.stderr)
    if not names:
        print(f"no model matches {args.pattern!r}")
        return 0
    flops = _shows_flops(args)
    rows = [["name", "family", "params", *(["gmacs", "gflops"] if flops else []), "plugin"]]
    unavailable = []
    for name, info in infos.items():
        if isinstance(info, Exception):  # one unbuildable model must not hide the others
            unavailable.append(f"{name}: {info}")
            rows.append([name, "?", "unavailable", *(["?", "?"] if flops else []), "?"])
            continue
        counted = [f"{info['gmacs']:.3f}", f"{info['gflops']:.3f}"] if flops else []
        rows.append([name, info["family"], f"{info['params']:,}", *counted,
                     f"{info['distribution'] or info['plugin']} {info['version']}"])
    print(_table(rows))
    for line in unavailable:
        print(f"unavailable: {line}", file=sys.stderr)
    return 0


def _shows_flops(args) -> bool:
    """Whether ``list`` counts FLOPs anyway (to sort or filter by them), and so shows them."""
    return args.sort in ("gflops", "gmacs") or args.max_gflops is not None


def _described(args) -> tuple[list[str], dict[str, Any]]:
    """The models ``list`` shows and their infos (an exception for one that cannot be
    built). A builder that raises while being described warns once, as a plugin fault;
    ``list`` reports that model as unavailable with the same cause, so that warning is
    not repeated, and every other warning is."""
    import warnings

    from ..factory.catalog import list_models, model_infos

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = list_models(args.pattern, family=args.family, plugin=args.plugin, max_params=args.max_params,
                            max_gflops=args.max_gflops, input_size=args.input_size, pretrained=args.pretrained,
                            sort=args.sort)
        infos = model_infos(names, flops=args.json or _shows_flops(args))
    reported = {("model", name) for name, info in infos.items() if isinstance(info, Exception)}
    for warning in caught:
        if getattr(warning.message, "entry", None) not in reported:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return names, infos


def cmd_info(args) -> int:
    info: dict[str, Any]
    if args.name.endswith(".safetensors") or Path(args.name).is_file():
        from ..weights.safetensors_io import read_metadata

        info = read_metadata(args.name)
        if not info:
            print(f"{args.name}: a safetensors file without metadata")
            return 0
    else:
        from ..factory.catalog import model_info

        info = model_info(args.name)
        info["gflops"] = round(info["gflops"], 3)
        info["gmacs"] = round(info["gmacs"], 3)
    from ..weights.validate import shown

    width = min(max(len(k) for k in info), INFO_KEY_WIDTH)
    for key, value in info.items():  # a file's text is escaped: no terminal control, one line per entry
        print(f"{shown(key, INFO_KEY_WIDTH).ljust(width)}  {shown(value, INFO_VALUE_CHARS) or '-'}")
    return 0


def cmd_plugins(args) -> int:
    from ..factory.catalog import list_contested, list_plugins

    if args.check is not None:
        return _check_plugins(args.check)
    records = [r.as_dict() for r in list_plugins()]
    contests = list_contested()
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    for r in records:
        print(f"{r['name']}  {r['distribution']} {r['version']}  [{r['status']}]  {r['entry_point']}")
        if r["error"]:
            print(f"    error: {r['error']}")
        if r["hooks"]:
            print(f"    hooks: {', '.join(r['hooks'])}")
        for kind, names in r["provided"].items():
            print(f"    {kind if kind.endswith('s') else kind + 's'}: {', '.join(names)}")
        for note in r["overrides"]:
            print(f"    overrides: {note}")
    for contest in contests:
        print(f"contested: {contest['text']}")
    return 0


def _check_plugins(names: list[str]) -> int:
    """Health of every plugin and model, then the conformance kit on the named plugins:
    exit 1 on any problem. Models are built first (on the meta device), so a builder
    that raises shows in its plugin's record."""
    from ..factory.catalog import list_contested, list_plugins
    from ..testing import check_plugin, unavailable_models

    unavailable = [f"model {name} is unavailable: {why}" for name, why in unavailable_models().items()]
    problems = [f"plugin {r.name} ({r.distribution} {r.version}) is {r.status}: {r.error}"
                for r in list_plugins() if r.status == "broken" or (r.status == "ok" and r.error)]
    problems += unavailable
    problems += [f"contested: {c['text']}" for c in list_contested() if not c["settled"]]
    for name in names:
        for what, outcome in check_plugin(name):
            print(f"{name}: {what}: {outcome}")
            if outcome.startswith("FAILED"):
                problems.append(f"{name}: {what}: {outcome}")
    for line in problems:
        print(f"problem: {line}", file=sys.stderr)
    print(f"plugins --check: {len(problems)} problem(s)")
    return 1 if problems else 0
