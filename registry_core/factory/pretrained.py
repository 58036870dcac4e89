"""Pretrained weights by name: resolving ``model.tag``, filling the store, the catalogue.

``create("resnet50.tv2_in1k", pretrained=True)`` loads that tag from the store
(``<REGISTRY_CORE_HOME>/weights/resnet50.tv2_in1k.safetensors``); ``create("resnet50",
pretrained=True)`` the model's default tag. A missing file is converted, once, from
torchvision's or timm's own download cache when it holds the tag's file (torchvision's
first, see ``CACHE_PREFERENCE``); otherwise the error names the exact file and folder.
Models without registered tags keep the untagged store file and the converters'
default checkpoints. Nothing is ever downloaded.

``list_pretrained`` and ``pretrained_info`` answer from the manifest when no plugin is
loaded, so ``registry-core weights`` needs no torch.
"""

from __future__ import annotations

import fnmatch
import warnings
from pathlib import Path
from typing import Any

from ..errors import UnknownComponentError, WeightsError
from ..weights.tags import WeightSource, WeightTag, split_name
from . import manifest
from .catalog import default_host
from .library_caches import (
    by_cache_preference,
    cached_checkpoint,
    cached_source_file,
    hf_hub_cache,
    hub_checkpoints,
    sources_by_preference,
)
from .store import store_path


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
    library cache when it is missing there and a cache holds it."""
    model, tag = resolve_weights(name)
    if tag is None:
        return _untagged(model, allow_non_finite)
    stored = stored_file(tag.name, tag.default)
    if stored is not None:
        return stored
    path = store_path(tag.name)
    found = cached_file(tag.sources)
    if found is not None:
        from .conversion import convert_from

        source, cached = found
        warnings.warn(f"converting {source.library}'s cached {cached} into {path} (once)", UserWarning, stacklevel=3)
        convert_from(source.library, model, cached, path, allow_non_finite=allow_non_finite, tag=tag.tag)
        return path
    raise WeightsError(f"no pretrained weights for {tag.name} in {path.parent} (nothing is downloaded); "
                       + "; or ".join(placement(s) for s in sources_by_preference(tag.sources))
                       + f"; or convert a checkpoint you have: registry-core convert --from LIBRARY --model {model} "
                       f"--tag {tag.tag} --checkpoint FILE --out {path}")


def stored_file(name: str, default: bool) -> Path | None:
    """The store's file of tag ``name`` (``model.tag``); for a default tag, a file stored
    before tags existed (``<model>.safetensors``) serves too."""
    for path in (store_path(name), *([store_path(split_name(name)[0])] if default else [])):
        if path.is_file():
            return path
    return None


def cached_file(sources: tuple[WeightSource, ...]) -> tuple[WeightSource, Path] | None:
    """The first source, in cache-preference order, whose library's cache holds its file."""
    for source in sources_by_preference(sources):
        cached = cached_source_file(source)
        if cached is not None:
            return source, cached
    return None


def placement(source: WeightSource) -> str:
    """Where to put ``source``'s file so that ``pretrained=True`` finds it."""
    places = []
    if source.file:
        places.append(f"place {source.file} in {hub_checkpoints()}")
    if source.hub_id:
        folder = hf_hub_cache() / f"models--{source.hub_id.replace('/', '--')}"
        places.append(f"download {source.hub_id} from the Hugging Face hub into {folder}")
    return f"{source.describe()}: " + " or ".join(places) if places else f"{source.describe()}: no known file"


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
            convert_from(converter.source, name, cached, path, allow_non_finite=allow_non_finite)
            return path
    commands = "; or ".join(
        f"registry-core convert --from {c.source} --model {name} --checkpoint FILE --out {path}" for c in converters
    )
    advice = f"convert a checkpoint you have: {commands}" if converters else "no converter is registered for it either"
    raise WeightsError(f"no pretrained weights for {name!r} in {path.parent} (nothing is downloaded); {advice}")


# ---- the catalogue ----------------------------------------------------------------------


def list_pretrained(pattern: str = "*") -> list[str]:
    """Every registered weight tag (``model.tag``) matching a shell-style ``pattern``;
    a bare model name lists that model's tags."""
    if "." not in pattern and not any(c in pattern for c in "*?["):
        pattern = f"{pattern}.*"
    return sorted(n for n in _described() if fnmatch.fnmatchcase(n, pattern))


def pretrained_info(name: str) -> dict[str, Any]:
    """A tag's facts (``WeightTag.describe()``) and where its weights are now:
    ``status`` is ``store`` (with ``path``), ``cache`` (with ``library`` and ``path``:
    convertible now) or ``absent`` (with ``advice``: which file to place where)."""
    described = _described()
    if name not in described:
        model, tag = split_name(name)
        candidates = [n for n in described if n.startswith(f"{model}.")] or list(described)
        raise UnknownComponentError("weights", name, candidates)
    info = dict(described[name])
    sources = tuple(WeightSource(**{k: v for k, v in s.items() if k != "data_config"}) for s in info["sources"])
    stored = stored_file(name, info["default"])
    if stored is not None:
        info.update(status="store", path=str(stored))
        return info
    found = cached_file(sources)
    if found is not None:
        info.update(status="cache", library=found[0].library, path=str(found[1]))
        return info
    info.update(status="absent", advice="; or ".join(placement(s) for s in sources) or "no known source")
    return info


def _described() -> dict[str, dict[str, Any]]:
    host = manifest.live_host()
    if host is None:
        return manifest.current().get("weights", {})
    registry = host.registry
    return {name: registry.get("weights", name).obj.describe() for name in registry.names("weights")}
