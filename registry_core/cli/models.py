"""``list``, ``info`` and ``plugins``: what the registry holds."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ..errors import RegistryCoreError


def add_commands(sub) -> None:
    p = sub.add_parser("list", help="list registered models")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style pattern, e.g. 'resnet*'")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("info", help="describe a model, or a weights file's metadata")
    p.add_argument("name", help="a model name or a .safetensors file")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("plugins", help="list plugins, their versions, hooks and what they provided")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_plugins)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def cmd_list(args) -> int:
    from ..factory.catalog import list_models, model_info

    names = list_models(args.pattern)
    if not names:
        print(f"no model matches {args.pattern!r}")
        return 0
    rows = [["name", "family", "params", "plugin"]]
    unavailable = []
    for name in names:
        try:
            info = model_info(name, flops=False)
        except RegistryCoreError as exc:  # one unbuildable model must not hide the others
            unavailable.append(f"{name}: {exc}")
            rows.append([name, "?", "unavailable", "?"])
            continue
        rows.append([name, info["family"], f"{info['params']:,}", f"{info['distribution'] or info['plugin']} {info['version']}"])
    print(_table(rows))
    for line in unavailable:
        print(f"unavailable: {line}", file=sys.stderr)
    return 0


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
    width = max(len(k) for k in info)
    for key, value in info.items():
        print(f"{key.ljust(width)}  {value}")
    return 0


def cmd_plugins(args) -> int:
    from ..factory.catalog import list_plugins

    records = [r.as_dict() for r in list_plugins()]
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
            print(f"    {kind}s: {', '.join(names)}")
        for note in r["overrides"]:
            print(f"    overrides: {note}")
    return 0
