"""``create`` and ``load``: the one-way path from a name (or a file) to a module.

Without weights, ``create`` is ``build_model``. With weights it resolves the file (the
store for ``pretrained=True``, by tag), then ``loading.load_file`` builds the model once
on the meta device and assigns the tensors. Nothing below this module calls ``create``.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import UnknownComponentError
from ..model.compose import ComposedModel
from ..weights.tags import WeightTag
from .build import build_model
from .catalog import get_converter
from .loading import load_file
from .pretrained import ensure_pretrained, resolve_weights


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
    fuse: bool = False,
    **options: Any,
) -> ComposedModel:
    """Build a registered model by name.

    ``block``/``stem``/``head`` swap in another registered component (a block swap
    applies to every stage); other keyword ``options`` are the model's own (for
    example ``groups`` for ResNeXt). ``name`` may carry a weight tag
    (``"resnet50.tv2_in1k"``): the model then has that tag's preprocessing
    (``model.data_config``) even without weights. ``weights`` is a safetensors file to
    load; ``pretrained=True`` loads the tag's (or the model's default tag's) file from
    ``<REGISTRY_CORE_HOME>/weights/``, converting it once from torchvision's or timm's
    cache. With weights, the model is built on the meta device and takes the file's
    tensors as they are; options left unset follow the file, and so do its data
    config, class names and tag (see ``docs/weights.md``). A file holding NaN or Inf is
    refused unless ``allow_non_finite=True``. ``fuse=True`` returns the model in eval
    mode with BatchNorm folded into the convolutions, for inference (``model.fuse()``).
    """
    given = {"num_classes": num_classes, "in_chans": in_chans, "block": block, "stem": stem, "head": head}
    requested = {**{k: v for k, v in given.items() if v is not None}, **options}
    if features_only:
        requested["features_only"] = True
    model_name, tag = resolve_weights(name) if "." in name else (name, None)
    if weights is None and not pretrained:
        model = build_model(model_name, **{**tag_options(tag), **requested})
        if tag is not None:
            model.data_config = tag.data.with_channels(model.meta.input_size[0])
            model.pretrained_tag = tag.tag
    else:
        path = weights if weights is not None else ensure_pretrained(name, allow_non_finite=allow_non_finite)
        model = load_file(path, model_name, allow_non_finite=allow_non_finite, **requested)
    return model.eval().fuse() if fuse else model


def tag_options(tag: WeightTag | None) -> dict[str, Any]:
    """The create options a tag's weights need: its first source's converter's, then its own."""
    if tag is None:
        return {}
    options: dict[str, Any] = {}
    if tag.sources:
        try:
            options.update(get_converter(tag.sources[0].library, tag.model).create_kwargs)
        except UnknownComponentError:
            pass
    return {**options, **tag.create_kwargs}


def load(path: str | os.PathLike, *, allow_non_finite: bool = False, **overrides: Any) -> ComposedModel:
    """Rebuild the model a weights file was saved from, using its metadata alone, and
    load the weights. ``overrides`` replace recorded create options (e.g. ``num_classes``)."""
    return load_file(path, allow_non_finite=allow_non_finite, **overrides)
