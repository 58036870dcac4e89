"""Strict assignment: a state dict becomes a freshly built module's parameters.

The module is built on the meta device (nothing initialised) and the tensors, often
memory-mapped from a file, become its parameters (``assign=True``): no second copy.
Keys and shapes must match exactly; every mismatch is named.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import chain
from typing import Any, TypeVar

from torch import Tensor, nn

from ..errors import WeightsError
from ..model.compose import meta_device
from .validate import fit_tensors

M = TypeVar("M", bound=nn.Module)

SHOWN_KEYS = 12  # how many key names an error lists per kind of mismatch


def assign_weights(build: Callable[[], M], state: dict[str, Tensor], *,
                   prepare: Callable[[M], Any] | None = None, on_error: str = "", allow_non_finite: bool = False,
                   notes: list[str] | None = None, source: str = "weights") -> M:
    """``build()`` on the meta device, then make ``state``'s tensors its parameters.
    Keys must match exactly; a mismatch is a ``WeightsError`` listing them.
    ``prepare(module)`` may adapt ``state`` to the freshly built module first. Dtypes
    and values are checked by ``validate.fit_tensors``; its notes (casts) are appended
    to ``notes`` when given.

    A module with non-persistent buffers (absent from any state dict) is built again
    for real, since their values come from its constructor.
    """
    with meta_device():
        module = build()
    if prepare is not None:
        prepare(module)
    expected = module.state_dict()
    problem = key_mismatches(expected, state)
    if problem:
        raise WeightsError(problem + on_error)
    state, cast_notes = fit_tensors(expected, state, allow_non_finite=allow_non_finite, source=source)
    if notes is not None:
        notes.extend(cast_notes)
    module.load_state_dict(state, strict=True, assign=True)
    if any(t.is_meta for t in chain(module.parameters(), module.buffers())):
        module = build()
        module.load_state_dict(state, strict=True)
    return module


def key_mismatches(expected: Mapping[str, Tensor], given: Mapping[str, Tensor]) -> str:
    """'' when ``given`` fits ``expected`` key for key and shape for shape; otherwise a
    message naming the missing, unexpected and mis-shaped keys."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    misshaped = [
        f"{k} (file {tuple(given[k].shape)}, model {tuple(expected[k].shape)})"
        for k in expected if k in given and given[k].shape != expected[k].shape
    ]
    parts = [f"{len(keys)} {what}: {names_shown(keys)}" for what, keys in
             (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)) if keys]
    return "weights do not fit the model; " + "; ".join(parts) if parts else ""


def names_shown(keys: list[str]) -> str:
    more = f" ... and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else ""
    return ", ".join(keys[:SHOWN_KEYS]) + more
