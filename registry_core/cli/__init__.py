"""The ``registry-core`` command.

Each command area lives in its own module of this package and adds its subcommands
through ``add_commands(subparsers)``; modules are found, not listed. They import what
a command needs (torch included) only when that command runs. Any ``RegistryCoreError`` (or a
``ValueError`` raised while checking user input) becomes one line on stderr and exit
code 2, never a traceback. Everything a command prints goes through
``text.EscapingStream``: text from a file, the index or the user cannot drive the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import pkgutil
import sys
import warnings

from .._version import __version__
from ..errors import RegistryCoreError
from ..factory import manifest
from ..text import EscapingStream, one_line


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own exit code is already 2; keep its one-line style
        self.print_usage(sys.stderr)
        self.exit(2, f"registry-core: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="registry-core", description="A plugin-based model registry for PyTorch.")
    parser.add_argument("--version", action="version", version=f"registry-core {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{info.name}").add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    with escaped_output():
        return _run(argv)


@contextlib.contextmanager
def escaped_output():
    """Route stdout and stderr through the terminal escaping for the command's duration."""
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = EscapingStream(stdout), EscapingStream(stderr)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = stdout, stderr


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    manifest.announce_slow_builds = True
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.formatwarning = lambda message, category, *rest: f"warning: {message}\n"
        try:
            return args.func(args) or 0
        except (RegistryCoreError, ValueError) as exc:
            print(f"registry-core: error: {one_line(exc)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("registry-core: interrupted", file=sys.stderr)
            return 130
