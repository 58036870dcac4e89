"""``create`` and ``load``: the one-way path from a name (or a file) to a module.

Without weights, ``create`` is ``build_model``. With weights it resolves the file (the
store for ``pretrained=True``), then ``loading.load_file`` builds the model once on the
meta device and assigns the tensors. Nothing below this module calls ``create``.
"""

from __future__ import annotations

import os
from typing import Any

from ..model.compose import ComposedModel
from .build import build_model
from .conversion import ensure_pretrained
from .loading import load_file


def create(
    name: str,
    *,
    weights: str | os.PathLike | None = None,
    pretrained: bool = False,
    num_classes: int | None = None,
    in_chans: int | None = None,
    features_only: bool = False,
    block: str | None = None,
    stem: str | None = None,
    head: str | None = None,
    allow_non_finite: bool = False,
    **options: Any,
) -> ComposedModel:
    """Build a registered model by name.

    ``block``/``stem``/``head`` swap in another registered component (a block swap
    applies to every stage); other keyword ``options`` are the model's own (for
    example ``groups`` for ResNeXt). ``weights`` is a safetensors file to load;
    ``pretrained=True`` loads ``<REGISTRY_CORE_HOME>/weights/<name>.safetensors``.
    With weights, the model is built on the meta device and takes the file's tensors
    as they are; options left unset follow the file (see ``docs/weights.md``). A file
    holding NaN or Inf is refused unless ``allow_non_finite=True``.
    """
    given = {"num_classes": num_classes, "in_chans": in_chans, "block": block, "stem": stem, "head": head}
    requested = {**{k: v for k, v in given.items() if v is not None}, **options}
    if features_only:
        requested["features_only"] = True
    if weights is None and not pretrained:
        return build_model(name, **requested)
    path = weights if weights is not None else ensure_pretrained(name, allow_non_finite=allow_non_finite)
    return load_file(path, name, allow_non_finite=allow_non_finite, **requested)


def load(path: str | os.PathLike, *, allow_non_finite: bool = False, **overrides: Any) -> ComposedModel:
    """Rebuild the model a weights file was saved from, using its metadata alone, and
    load the weights. ``overrides`` replace recorded create options (e.g. ``num_classes``)."""
    return load_file(path, allow_non_finite=allow_non_finite, **overrides)
