"""Converters as plain data, plus the key-renaming helpers their key maps share.

A converter maps one model's state dict between another library's layout and ours.
Both directions are pure functions ``dict[str, Tensor] -> dict[str, Tensor]``; the
core does all reading, writing, model building and output verification.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from ..errors import ConversionError

StateDict = dict[str, Tensor]


@dataclass(frozen=True)
class Converter:
    """How to move ``model``'s weights between ``source``'s layout and ours.

    ``source_model`` and ``source_kwargs`` say how to build the matching model in the
    source library (used only to verify outputs); ``create_kwargs`` are the overrides
    our ``create`` needs to behave like that source model. ``source_options`` names our
    model options that the source library's builder takes too, under its own name
    (``{"image_size": "img_size"}``): a model built with such an option (a weight tag's
    image size) is verified against the source model built with the same value.
    """

    source: str
    model: str
    to_ours: Callable[[StateDict], StateDict]
    from_ours: Callable[[StateDict], StateDict]
    source_model: str | None = None
    source_kwargs: Mapping[str, Any] = field(default_factory=dict)
    create_kwargs: Mapping[str, Any] = field(default_factory=dict)
    version: str = "1"
    source_options: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.source}/{self.model}"

    @property
    def source_name(self) -> str:
        return self.source_model or self.model


def rename_prefixes(state: Mapping[str, Tensor], prefixes: Mapping[str, str], *, strict: bool = True) -> StateDict:
    """Rename every key by its longest matching prefix in ``prefixes`` (old -> new).

    A prefix map is a readable constant and reverses with ``invert_prefixes``. With
    ``strict``, a key no prefix matches is a ``ConversionError`` naming it, so a
    converter never drops a weight silently; without it, such keys pass unchanged.
    """
    ordered = sorted(prefixes.items(), key=lambda item: len(item[0]), reverse=True)
    out: StateDict = {}
    unmatched = []
    for key, value in state.items():
        for old, new in ordered:
            if key.startswith(old):
                new_key = new + key[len(old):]
                break
        else:
            if strict:
                unmatched.append(key)
                continue
            new_key = key
        if new_key in out:
            raise ConversionError(f"two keys map to {new_key!r}")
        out[new_key] = value
    if unmatched:
        shown = ", ".join(unmatched[:5]) + (" ..." if len(unmatched) > 5 else "")
        raise ConversionError(f"{len(unmatched)} key(s) match no prefix of the conversion map: {shown}")
    return out


def invert_prefixes(prefixes: Mapping[str, str]) -> dict[str, str]:
    """The reverse prefix map; a map that sends two prefixes to one is a ``ValueError``."""
    inverted = {new: old for old, new in prefixes.items()}
    if len(inverted) != len(prefixes):
        raise ValueError("prefix map is not one-to-one, so it cannot be reversed")
    return inverted
