"""Class names for a weight tag, resolved when its weights are converted.

A tag names its label set (``"imagenet-1k"``) instead of carrying 1,000 strings; the
names are read here from torchvision's weights metadata (the tag's own enum member when
torchvision is the source, else any ImageNet-1k member), or from timm's ImageNet info
when only timm is installed. The names then live in the converted file's header.
"""

from __future__ import annotations

import importlib.util
import warnings

from ..weights.tags import WeightSource, WeightTag

IMAGENET_CLASSES = 1000


def tag_class_names(tag: WeightTag, source: WeightSource | None = None) -> list[str] | None:
    """``tag``'s class names in label order, or ``None`` when it has none (or none can
    be found here, with a warning saying so)."""
    if tag.labels is None:
        return None
    if isinstance(tag.labels, tuple):
        return list(tag.labels)
    names = _torchvision_imagenet(source) or _timm_imagenet()
    if names is None:
        warnings.warn(f"{tag.name}: no ImageNet-1k class names found (install torchvision or timm); "
                      "the file will record none", UserWarning, stacklevel=3)
    return names


def _torchvision_imagenet(source: WeightSource | None) -> list[str] | None:
    if importlib.util.find_spec("torchvision") is None:
        return None
    from torchvision import models

    if source is not None and source.library == "torchvision":
        try:
            categories = models.get_model_weights(source.model)[source.member].meta.get("categories")
        except (KeyError, ValueError):
            categories = None
        if categories and len(categories) == IMAGENET_CLASSES:
            return list(categories)
    for name in models.list_models():
        try:
            weights = models.get_model_weights(name)
        except (KeyError, ValueError):
            continue
        for member in weights:
            categories = member.meta.get("categories")
            if member.name.startswith("IMAGENET1K") and categories and len(categories) == IMAGENET_CLASSES:
                return list(categories)
    return None


def _timm_imagenet() -> list[str] | None:
    if importlib.util.find_spec("timm") is None:
        return None
    from timm.data import ImageNetInfo

    descriptions = ImageNetInfo("imagenet-1k").label_descriptions()
    return [d.split(",")[0].strip() for d in descriptions] if len(descriptions) == IMAGENET_CLASSES else None
