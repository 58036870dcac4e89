"""One validation for every argument a user gives, through the API or the command line.

Each check takes the value and the parameter's name and returns the value as the code
uses it, or raises ``InvalidOverrideError`` naming the parameter: a number must be a
real, finite number in its range (``nan`` and ``inf`` are never a learning rate or a
size), a pattern is a string of bounded length (a shell pattern is compiled to a regular
expression, which a pathological pattern can make take minutes), a path is a non-empty
path. ``for_cli`` turns a check into an ``argparse`` type, so the command line refuses
the same values with the same words, as a one-line usage error with exit code 2.
"""

from __future__ import annotations

import argparse
import math
import numbers
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import InvalidOverrideError

MAX_PATTERN_CHARS = 200
MAX_IMAGE_SIDE = 8192  # the largest image side any command takes (as weights.validate.MAX_IMAGE_SIZE)


def check_pattern(pattern: Any, parameter: str = "pattern") -> str:
    """A shell-style name pattern (``resnet*``)."""
    if not isinstance(pattern, str):
        raise InvalidOverrideError(parameter, f"must be a name pattern such as 'resnet*', got {type(pattern).__name__}")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise InvalidOverrideError(parameter, f"a pattern of {len(pattern):,} characters is too long "
                                   f"(at most {MAX_PATTERN_CHARS})")
    return pattern


def check_name(value: Any, parameter: str = "name") -> str:
    """A registered name (a model, a family, a plugin, a source library), as text."""
    if not isinstance(value, str) or not value or len(value) > MAX_PATTERN_CHARS:
        raise InvalidOverrideError(parameter, f"must be a name such as 'resnet50', got {value!r:.80}")
    return value


def check_optional_name(value: Any, parameter: str) -> str | None:
    """``None``, or a name."""
    return None if value is None else check_name(value, parameter)


def check_number(value: Any, parameter: str, *, minimum: float | None = None, maximum: float | None = None,
                 above: float | None = None, integer: bool = False) -> Any:
    """A finite number (an integer with ``integer=True``) with ``minimum <= value <= maximum``
    and ``value > above`` where given."""
    kind = "a whole number" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral if integer else numbers.Real):
        raise InvalidOverrideError(parameter, f"must be {kind}, got {value!r:.80}")
    value = int(value) if integer else float(value)  # type: ignore[call-overload]
    if not math.isfinite(value):
        raise InvalidOverrideError(parameter, f"must be a finite number, got {value}")
    if above is not None and not value > above:
        raise InvalidOverrideError(parameter, f"must be above {above:g}, got {value}")
    if minimum is not None and value < minimum:
        raise InvalidOverrideError(parameter, f"must be at least {minimum:g}, got {value}")
    if maximum is not None and value > maximum:
        raise InvalidOverrideError(parameter, f"must be at most {maximum:g}, got {value}")
    return value


def check_optional_number(value: Any, parameter: str, **bounds: Any) -> Any:
    return None if value is None else check_number(value, parameter, **bounds)


def check_path(value: Any, parameter: str) -> Path:
    """A file or folder path given as text or a path object, never empty."""
    if not isinstance(value, (str, os.PathLike)):
        raise InvalidOverrideError(parameter, f"must be a path, got {type(value).__name__}")
    text = os.fspath(value)
    if not isinstance(text, str) or not text.strip():
        raise InvalidOverrideError(parameter, "must be a path, got an empty one")
    return Path(text)


def check_options(args: Any, bounds: dict[str, dict[str, Any]], *, as_typed: bool = True) -> None:
    """Check the parsed command-line options named in ``bounds`` (attribute name ->
    ``check_number``'s bounds) that were given; the error names the option as typed
    (``--batch-size``), or with ``as_typed=False`` as the setting it fills (``batch_size``,
    as ``train`` and ``eval`` name them, after ``TrainConfig``'s fields)."""
    for name, limits in bounds.items():
        value = getattr(args, name, None)
        if value is not None:
            check_number(value, "--" + name.replace("_", "-") if as_typed else name, **limits)


def for_cli(check: Callable[..., Any], parse: Callable[[str], Any] = float, **bounds: Any) -> Callable[[str], Any]:
    """An ``argparse`` type: parse the text, then apply ``check`` with ``bounds``."""

    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            kind = "a whole number" if parse is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {kind}, got {text!r:.80}") from None
        try:
            return check(value, "value", **bounds)
        except InvalidOverrideError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix("value: ")) from None

    convert.__name__ = parse.__name__  # argparse names the type in its messages
    return convert
