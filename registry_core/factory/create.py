"""``create`` and ``load``: the one-way path from a name (or a file) to a module.

Without weights, ``create`` is ``build_model``. With weights it resolves the file (the
store for ``pretrained=True``, by tag), then ``loading.load_state`` builds the model once
on the meta device and assigns the tensors. A foreign checkpoint (a ``.pth`` of
torchvision or timm, a training checkpoint, a safetensors file without our header) is
identified and converted in memory first (``conversion.convert_checkpoint``). Nothing
below this module calls ``create``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from ..arguments import check_name, check_optional_number, check_path
from ..errors import WeightsError
from ..model.compose import ComposedModel
from ..weights.checkpoints import is_pickle_name
from ..weights.metadata import model_metadata
from ..weights.safetensors_io import read_tensors
from ..weights.unwrap import ForeignCheckpoint, unwrap
from ..weights.validate import MAX_IN_CHANS, MAX_NUM_CLASSES
from ..weights.validate import check_name as check_model_name
from .build import build_model
from .conversion import convert_checkpoint
from .layouts import OURS
from .loading import load_state
from .pretrained import ensure_pretrained, overlay_pretrained_cfg, resolve_weights, source_fields, tag_options


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
    ema: bool = False,
    pretrained_cfg_overlay: dict[str, Any] | None = None,
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

    ``weights`` may also be another library's checkpoint: a torchvision or timm state
    dict, a training checkpoint (timm's ``train.py``, torchvision's reference scripts,
    Lightning, DDP or ``torch.compile`` wrapped) or timm's hub safetensors. It is
    identified, converted in memory with the class count and input channels its
    shapes give (a warning says ``registry-core convert`` makes this instant next
    time), then loaded like our own; ``ema=True`` takes a training checkpoint's EMA
    weights.

    A tag whose head differs from the architecture's (``resnet50.bamboo``: no
    classifier, as timm's) builds the head its tag says unless ``num_classes`` is given.
    ``pretrained_cfg_overlay`` (timm's) replaces fields of the model's
    ``pretrained_cfg``: the preprocessing fields (``input_size``, ``mean``, ``std``,
    ``interpolation``, ``crop_pct``, ``crop_mode``, ``test_input_size``,
    ``test_crop_pct``) change ``model.data_config``, so ``transforms(model)`` and
    ``resolve_data_config(model=model)`` follow them; ``license``, ``hf_hub_id``, ``url``
    and ``tag`` are shown as given. Any other key is an ``InvalidOverrideError``.
    """
    check_name(name)
    if weights is not None:
        check_path(weights, "weights")
    given = {"num_classes": num_classes, "in_chans": in_chans, "block": block, "stem": stem, "head": head}
    check_sizes(given)
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
        model = load_weights(path, model_name, allow_non_finite=allow_non_finite, ema=ema, **requested)
    stamp_source(model)
    if pretrained_cfg_overlay is not None:
        overlay_pretrained_cfg(model, pretrained_cfg_overlay)
    return model.eval().fuse() if fuse else model


def load(path: str | os.PathLike, *, allow_non_finite: bool = False, ema: bool = False, **overrides: Any) -> ComposedModel:
    """Rebuild the model a weights file was saved from, using its metadata alone, and
    load the weights. ``overrides`` replace recorded create options (e.g. ``num_classes``).
    A foreign checkpoint is identified and converted in memory (see ``create``)."""
    check_path(path, "path")
    check_sizes(overrides)
    return stamp_source(load_weights(path, allow_non_finite=allow_non_finite, ema=ema, **overrides))


def check_sizes(options: dict[str, Any]) -> None:
    """``num_classes`` and ``in_chans``, where given, checked alike by ``create`` and ``load``."""
    check_optional_number(options.get("num_classes"), "num_classes", minimum=0, maximum=MAX_NUM_CLASSES, integer=True)
    check_optional_number(options.get("in_chans"), "in_chans", minimum=1, maximum=MAX_IN_CHANS, integer=True)


def stamp_source(model: ComposedModel) -> ComposedModel:
    """``model`` with its tag's license, hub id and URL, which ``pretrained_cfg`` shows."""
    if model.pretrained_tag:
        model.pretrained_source = source_fields(f"{model.model_name}.{model.pretrained_tag}")
    return model


def load_weights(path: str | os.PathLike, name: str | None = None, *, allow_non_finite: bool = False, ema: bool = False,
                 **requested: Any) -> ComposedModel:
    """Our weights file at ``path`` loaded into ``name`` (or the model it records), or a
    foreign checkpoint converted in memory first. Each file is read once."""
    if name is not None:
        check_model_name(name, "the model asked for")
    if is_pickle_name(path):
        return _load_foreign(path, name, None, ema, allow_non_finite, requested)
    state, header = read_tensors(path)
    if "model" not in header:  # safetensors without our header: timm's hub file, or our layout saved bare
        return _load_foreign(path, name, unwrap(state, path, ema=ema), ema, allow_non_finite, requested)
    if ema:
        raise WeightsError(f"{path} is a registry-core weights file, which holds one set of weights; "
                           "ema=True is for training checkpoints that hold an EMA copy")
    return load_state(state, header, path, name, allow_non_finite=allow_non_finite, **requested)


def _load_foreign(path: str | os.PathLike, name: str | None, weights: ForeignCheckpoint | None, ema: bool,
                  allow_non_finite: bool, requested: dict[str, Any]) -> ComposedModel:
    # a safetensors file for a named model that fits no layout is loaded as ours, so the strict load lists its keys
    fallback = OURS if weights is not None and name is not None else None
    done = convert_checkpoint(path, model=name, ema=ema, allow_non_finite=allow_non_finite, weights=weights,
                              fallback=fallback)
    found, model = done.found, done.model
    if done.converter.source != OURS:  # our layout, saved without our header, loads as it is
        how = f" ({found.unwrapped})" if found.unwrapped else ""
        warnings.warn(f"{path} is a {found.source} checkpoint of {found.model}{how}, converted in memory; "
                      f"`{found.convert_command()}` makes loading it instant next time", UserWarning, stacklevel=4)
    if not requested:
        return model
    return load_state(model.state_dict(), model_metadata(model), Path(path), model.model_name,
                      allow_non_finite=allow_non_finite, **requested)
