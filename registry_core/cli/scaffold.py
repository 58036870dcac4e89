"""``new-plugin``: write a ready-to-install block plugin skeleton (see ``registry_core.scaffold``)."""

from __future__ import annotations


def add_commands(sub) -> None:
    p = sub.add_parser("new-plugin", help="write a block plugin skeleton that installs and passes its own test")
    p.add_argument("name", help="the distribution name, e.g. registry-my-block")
    p.add_argument("--dir", help="folder to write it into, which must not exist or be empty (default: ./NAME)")
    p.set_defaults(func=cmd_new_plugin)


def cmd_new_plugin(args) -> int:
    from ..scaffold import write_plugin

    root = write_plugin(args.name, args.dir)
    print(f"wrote {root}; next: pip install -e '{root}[test]' && pytest {root / 'tests'}")
    return 0
