"""timm's feature API: ``feature_info`` and which stages ``out_indices`` and
``forward_intermediates(indices=...)`` select, and checking ``global_pool``."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from ..errors import InvalidOverrideError


class FeatureInfo(list):
    """``feature_info``: a list of per-stage dicts (``f["channels"]`` keeps working)
    that also answers timm's ``FeatureInfo`` calls, so code written for timm runs."""

    def get(self, key: str, idx: int | Sequence[int] | None = None) -> Any:
        if idx is None:
            return [entry[key] for entry in self]
        if isinstance(idx, int):
            return self[idx][key]
        return [self[i][key] for i in idx]

    def channels(self, idx: int | Sequence[int] | None = None) -> Any:
        return self.get("channels", idx)

    def reduction(self, idx: int | Sequence[int] | None = None) -> Any:
        return self.get("reduction", idx)

    def module_name(self, idx: int | Sequence[int] | None = None) -> Any:
        return self.get("module", idx)

    def get_dicts(self) -> list[dict[str, Any]]:
        return [dict(entry) for entry in self]


def check_global_pool(global_pool: str | None, num_classes: int) -> None:
    """``''`` (no pooling) leaves a feature map, which no linear classifier takes."""
    if global_pool is not None and not isinstance(global_pool, str):
        raise InvalidOverrideError("global_pool", f"must be a pooling name such as 'avg', 'max' or '', got {global_pool!r}")
    if global_pool == "" and num_classes:
        raise InvalidOverrideError("global_pool", f"'' keeps the feature map unpooled, which needs num_classes=0 "
                                   f"(got num_classes={num_classes})")


def take_indices(count: int, indices: int | Sequence[int] | None, parameter: str) -> list[int]:
    """Stage positions from timm-style ``indices``: None for all, an int n for the last
    n, or positions (negative ones counted from the end), each in range."""
    if indices is None:
        return list(range(count))
    if isinstance(indices, bool) or not isinstance(indices, (numbers.Integral, Sequence)) or isinstance(indices, str):
        raise InvalidOverrideError(parameter, f"must be an int or a sequence of stage indices, got {indices!r}")
    if isinstance(indices, numbers.Integral):
        last = int(indices)
        if not 0 < last <= count:
            raise InvalidOverrideError(parameter, f"the last {last} stages: must be from 1 to {count}")
        return list(range(count - last, count))
    taken: list[int] = []
    for i in indices:
        if isinstance(i, bool) or not isinstance(i, numbers.Integral) or not -count <= i < count:
            raise InvalidOverrideError(parameter, f"{i!r} is not a stage index of a model with {count} stages")
        taken.append(int(i) % count)
    if not taken:
        raise InvalidOverrideError(parameter, "selects no stage")
    return sorted(set(taken))
