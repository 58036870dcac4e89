"""Text for a terminal: what a file, the index or a user wrote is shown, never obeyed.

One rule serves every output path: control characters (ANSI escapes that retitle or
recolour a terminal, cursor moves, bidi overrides, line separators) are written as
their escapes. ``terminal_safe`` keeps the line structure a program's own output needs
(newline, tab, carriage return for progress bars); ``one_line`` keeps none of it, for a
value shown inside a message. The CLI passes everything it prints through an
``EscapingStream``, so no command can forget.
"""

from __future__ import annotations

import io
import re
from typing import TextIO

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_LAYOUT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def one_line(text: object) -> str:
    """``text`` with every control character escaped, newlines included."""
    return CONTROL.sub(_escaped, str(text))


def terminal_safe(text: str) -> str:
    """``text`` with control characters escaped except newline, tab and carriage return."""
    return _CONTROL_BUT_LAYOUT.sub(_escaped, text)


class EscapingStream(io.TextIOBase):
    """A text stream that writes through ``terminal_safe`` to the stream it wraps."""

    def __init__(self, stream: TextIO):
        super().__init__()
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(terminal_safe(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self):  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")
