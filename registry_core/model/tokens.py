"""Token stages: what flows between components, and turning tokens into maps and back.

A stage gives either maps (``"NCHW"``) or tokens (``"NLC"``: ``N x (P + h * w) x C``,
``P`` prefix tokens such as a class token, then the ``h x w`` patch grid row by row; see
``interfaces.py``). The core knows no architecture: it follows the formats the
components declare, checks at build time that each part reads what the part before it
gives, and records each stage's format in ``feature_info``. Where timm's feature API
wants maps, a token stage's patch tokens are laid back on their grid, which is
``floor(H / reduction) x floor(W / reduction)`` for an ``H x W`` image.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn

from ..errors import InvalidOverrideError, SpecError
from .interfaces import FORMATS, MAPS, TOKENS


class Flow(NamedTuple):
    """What the next component receives: its format and, for tokens, how many prefix tokens lead."""

    format: str
    prefix_tokens: int

    def describe(self) -> str:
        if self.format == MAPS:
            return "NCHW maps"
        return f"NLC tokens ({self.prefix_tokens} prefix)" if self.prefix_tokens else "NLC tokens"


def stem_flow(stem: nn.Module, name: str) -> Flow:
    """What ``stem`` gives, checked."""
    fmt = _declared(stem, "output_format", f"stem {name!r}")
    return Flow(fmt, _prefix(stem.prefix_tokens, f"stem {name!r}") if fmt == TOKENS else 0)


def check_reads(component: object, kind: str, name: str, received: Flow, where: str) -> None:
    """A ``SpecError`` saying both formats when the block or head ``component`` (its class
    will do, so this runs before building it) reads another format than it is given."""
    reads = _declared(component, "input_format", f"{where}: {kind} {name!r}")
    if reads != received.format:
        raise SpecError(f"{where}: {kind} {name!r} reads {reads} {'maps' if reads == MAPS else 'tokens'}, "
                        f"but {'it is given' if kind == 'block' else 'the model gives'} {received.describe()}")


def block_flow(block: nn.Module, name: str, received: Flow, where: str) -> Flow:
    """What ``block`` gives after reading ``received`` (which ``check_reads`` has checked)."""
    gives = _declared(block, "output_format", f"{where}: block {name!r}")
    if gives == MAPS:
        return Flow(MAPS, 0)
    declared = getattr(block, "prefix_tokens", None)
    if declared is None:
        return Flow(TOKENS, received.prefix_tokens if received.format == TOKENS else 0)
    return Flow(TOKENS, _prefix(declared, f"{where}: block {name!r}"))


def _declared(component: object, attribute: str, what: str) -> str:
    value = getattr(component, attribute, MAPS)
    if value not in FORMATS:
        raise SpecError(f"{what} declares {attribute} {value!r}; use 'NCHW' (maps) or 'NLC' (tokens)")
    return value


def _prefix(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError(f"{what}: prefix_tokens must be an integer of 0 or more, got {value!r}")
    return value


def tokens_to_map(x: Tensor, prefix_tokens: int, reduction: int, height: int, width: int) -> Tensor:
    """The patch tokens of ``x`` (``N x (P + h*w) x C``) as an ``N x C x h x w`` map, for an
    image of ``height x width``; the prefix tokens are dropped. Contiguous, as a stage's map is."""
    patches = x[:, prefix_tokens:]
    return patches.transpose(1, 2).reshape(x.shape[0], x.shape[2], height // reduction, width // reduction).contiguous()


def map_to_tokens(x: Tensor) -> Tensor:
    """An ``N x C x H x W`` map as ``N x (H*W) x C`` tokens, row by row."""
    return x.flatten(2).transpose(1, 2)


def check_output_fmt(output_fmt: str) -> None:
    if output_fmt not in FORMATS:
        raise InvalidOverrideError("output_fmt", f"must be 'NCHW' (maps) or 'NLC' (tokens), got {output_fmt!r}")
