"""Pretrained weights by name: resolving ``model.tag`` and filling the store.

``create("resnet50.tv2_in1k", pretrained=True)`` loads that tag from the store
(``<REGISTRY_CORE_HOME>/weights/resnet50.tv2_in1k.safetensors``); ``create("resnet50",
pretrained=True)`` the model's default tag. A missing file is converted, once, from
torchvision's or timm's own download cache when it holds the tag's file (torchvision's
first, see ``CACHE_PREFERENCE``); otherwise the error names the exact file and folder,
and any other tag of the architecture that is at hand. A stored file whose hash did
not match its tag's is loaded with a warning, every time. Models without registered
tags keep the untagged store file and the converters' default checkpoints. Nothing is
ever downloaded.

The catalogue (``list_pretrained``, ``pretrained_info``) lives in ``tag_catalog`` and
is re-exported here, where the public API has always found it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import InvalidOverrideError, UnknownComponentError, WeightsError
from ..model.data_config import DataConfig
from ..weights.provenance import cache_origin
from ..weights.tags import WeightTag, split_name
from .catalog import default_host, get_converter
from .library_caches import by_cache_preference, cached_checkpoint, sources_by_preference
from .store import store_path
from .tag_catalog import cached_file, list_pretrained, placement, pretrained_info, stored_file, stored_verification, tags_at_hand

__all__ = ["default_tag", "ensure_pretrained", "list_pretrained", "named_data_config", "overlay_pretrained_cfg",
           "pretrained_info", "resolve_weights", "source_fields", "tag_options"]


def resolve_weights(name: str) -> tuple[str, WeightTag | None]:
    """``"resnet50.tv2_in1k"`` -> ``("resnet50", that tag)``; a bare model name gives its
    default tag (``None`` when it has none). Unknown names fail with close matches."""
    registry = default_host().registry
    if "." not in name or name in registry.names("model"):
        registry.get("model", name)
        return name, default_tag(name)
    model, tag = split_name(name)
    registry.get("model", model)
    try:
        return model, registry.get("weights", name).obj
    except UnknownComponentError:
        known = registry.names("weights", f"{model}.*")
        tags = ", ".join(split_name(n)[1] for n in known)
        raise UnknownComponentError("weights", name, known,
                                    f"{model}'s tags: {tags}" if known else f"{model} has no registered tags") from None


def default_tag(model: str) -> WeightTag | None:
    registry = default_host().registry
    tags = [registry.get("weights", n).obj for n in registry.names("weights", f"{model}.*")]
    return next((t for t in tags if t.default), None)


def ensure_pretrained(name: str, *, allow_non_finite: bool = False) -> Path:
    """The store's file for ``name`` (``model`` or ``model.tag``), converted first from a
    library cache when it is missing there and a cache holds it. A stored file that is
    not verified (its hash did not match the tag's) is returned with a warning."""
    model, tag = resolve_weights(name)
    if tag is None:
        return _untagged(model, allow_non_finite)
    stored = stored_file(tag.name, tag.default)
    if stored is not None:
        verification = stored_verification(stored)
        if not verification.verified:
            warnings.warn(f"{stored} is unverified: {verification.reason}; it may not hold {tag.name}'s published "
                          "weights, and the tag's reported metrics are not its own", UserWarning, stacklevel=3)
        return stored
    path = store_path(tag.name)
    found = cached_file(tag.sources)
    if found is not None:
        from .conversion import convert_from

        source, cached = found
        warnings.warn(f"converting {source.library}'s cached {cached} into {path} (once)", UserWarning, stacklevel=3)
        convert_from(source.library, model, cached, path, allow_non_finite=allow_non_finite, tag=tag.tag,
                     origin=cache_origin(source.library))
        return path
    raise WeightsError(f"no pretrained weights for {tag.name} in {path.parent} (nothing is downloaded)"
                       + _at_hand(model, tag.name) + "; " + "; or ".join(placement(s) for s in sources_by_preference(tag.sources))
                       + f"; or convert a checkpoint you have: registry-core convert --from LIBRARY --model {model} "
                       f"--tag {tag.tag} --checkpoint FILE --out {path}")


def _at_hand(model: str, asked: str) -> str:
    """The other tags of ``model`` whose weights are here, as the call that loads them."""
    others = tags_at_hand(model, besides=asked)
    if not others:
        return ""
    listed = "; ".join(f"{name} is in {where}: create({name!r}, pretrained=True) "
                       f"(registry-core train --model {name} --pretrained)" for name, where in others)
    return f"; but {listed}"


def _untagged(name: str, allow_non_finite: bool) -> Path:
    """A model with no tags: the store's ``<name>.safetensors``, or the default
    checkpoint of a registered converter's library, found in that library's cache."""
    from .conversion import convert_from

    registry = default_host().registry
    path = store_path(name)
    if path.is_file():
        return path
    converters = by_cache_preference([registry.get("converter", key).obj for key in registry.names("converter", f"*/{name}")])
    for converter in converters:
        cached = cached_checkpoint(converter)
        if cached is not None:
            warnings.warn(f"converting {converter.source}'s cached {cached} into {path} (once)", UserWarning, stacklevel=4)
            convert_from(converter.source, name, cached, path, allow_non_finite=allow_non_finite,
                         origin=cache_origin(converter.source))
            return path
    commands = "; or ".join(
        f"registry-core convert --from {c.source} --model {name} --checkpoint FILE --out {path}" for c in converters
    )
    advice = f"convert a checkpoint you have: {commands}" if converters else "no converter is registered for it either"
    raise WeightsError(f"no pretrained weights for {name!r} in {path.parent} (nothing is downloaded); {advice}")


TORCHVISION_DOWNLOADS = "https://download.pytorch.org/models/"
SOURCE_FIELDS = ("license", "hf_hub_id", "url")  # what pretrained_cfg shows of a tag besides its data config
DATA_FIELDS = ("input_size", "interpolation", "crop_pct", "mean", "std", "test_input_size", "test_crop_pct", "crop_mode")


def source_fields(name: str) -> dict[str, str]:
    """The tag ``name``'s license, timm's hub id and a download URL (torchvision's, the
    one a source names outright; ``""`` where none is known), as ``pretrained_cfg`` shows them."""
    try:
        tag: WeightTag = default_host().registry.get("weights", name).obj
    except UnknownComponentError:
        return {}
    torchvision, timm = tag.source("torchvision"), tag.source("timm")
    url = TORCHVISION_DOWNLOADS + torchvision.file if torchvision is not None and torchvision.file else ""
    return {"license": tag.license, "hf_hub_id": timm.hub_id if timm is not None else "", "url": url}


def overlay_pretrained_cfg(model: Any, overlay: Mapping[str, Any]) -> None:
    """timm's ``pretrained_cfg_overlay``: ``overlay``'s preprocessing fields replace the
    model's ``data_config`` (checked as any data config); ``license``, ``hf_hub_id``,
    ``url`` and ``tag`` replace what ``pretrained_cfg`` shows. Other keys are refused."""
    if not isinstance(overlay, Mapping):
        raise InvalidOverrideError("pretrained_cfg_overlay", f"must be a dict, got {type(overlay).__name__}")
    unknown = sorted(str(k) for k in overlay if k not in (*DATA_FIELDS, *SOURCE_FIELDS, "tag"))
    if unknown:
        raise InvalidOverrideError("pretrained_cfg_overlay", f"cannot set {', '.join(unknown)}: it takes "
                                   f"{', '.join((*DATA_FIELDS, *SOURCE_FIELDS, 'tag'))}")
    data = {k: v for k, v in overlay.items() if k in DATA_FIELDS}
    if data:
        model.data_config = DataConfig.from_dict({**model.data_config.to_dict(), **data})
    for key in SOURCE_FIELDS:
        if key in overlay:
            model.pretrained_source = {**model.pretrained_source, key: str(overlay[key])}
    if "tag" in overlay:
        model.pretrained_tag = str(overlay["tag"])


def named_data_config(name: str) -> DataConfig:
    """The data config ``create(name)`` gives its model (a tag's, fitted to the model's
    input channels, or the architecture's own for a bare name), without building it."""
    from .build import spec_from

    model, tag = resolve_weights(name) if "." in name else (name, None)
    own = {k: v for k, v in tag_options(tag).items() if k != "num_classes"}
    meta = spec_from(default_host(), model, own).meta
    return tag.data.with_channels(meta.input_size[0]) if tag is not None else DataConfig.from_meta(meta)


def tag_options(tag: WeightTag | None) -> dict[str, Any]:
    """The create options a tag's weights need: its first source's converter's, then its own,
    and the tag's class count where it differs from the architecture's."""
    from .build import COMPOSE_OPTIONS, SWAPS, spec_from  # imports torch: the catalogue above stays without it

    if tag is None:
        return {}
    options: dict[str, Any] = {}
    if tag.sources:
        try:
            options.update(get_converter(tag.sources[0].library, tag.model).create_kwargs)
        except UnknownComponentError:
            pass
    options.update(tag.create_kwargs)
    own = {k: v for k, v in options.items() if k not in COMPOSE_OPTIONS + SWAPS}
    if "num_classes" not in options and tag.num_classes != spec_from(default_host(), tag.model, own).meta.num_classes:
        options["num_classes"] = tag.num_classes
    return options
