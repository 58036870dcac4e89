"""The catalogue of weight tags, and where each tag's weights are now.

``list_pretrained`` and ``pretrained_info`` answer from the manifest when no plugin is
loaded, so ``registry-core weights`` needs no torch. A tag's weights are in the store
(``<REGISTRY_CORE_HOME>/weights/model.tag.safetensors``), in torchvision's or timm's
download cache (converted on first use), or absent. A stored file is *verified* only
when its source file's hash matched the one its tag registers; an unverified file's
metrics are not the tag's published ones, so they are not shown as its own.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

from ..errors import UnknownComponentError, WeightsError
from ..weights.provenance import Verification, read_verification
from ..weights.tags import WeightSource, split_name
from . import manifest
from .library_caches import cached_source_file, hf_hub_cache, hub_checkpoints, sources_by_preference
from .store import store_path


def described_tags() -> dict[str, dict[str, Any]]:
    """Every registered tag's facts (``WeightTag.describe()``), by name."""
    host = manifest.live_host()
    if host is None:
        return manifest.current().get("weights", {})
    registry = host.registry
    return {name: registry.get("weights", name).obj.describe() for name in registry.names("weights")}


def list_pretrained(pattern: str = "*") -> list[str]:
    """Every registered weight tag (``model.tag``) matching a shell-style ``pattern``;
    a bare model name lists that model's tags."""
    if "." not in pattern and not any(c in pattern for c in "*?["):
        pattern = f"{pattern}.*"
    return sorted(n for n in described_tags() if fnmatch.fnmatchcase(n, pattern))


def pretrained_info(name: str) -> dict[str, Any]:
    """A tag's facts (``WeightTag.describe()``) and where its weights are now.

    ``status`` is ``store`` (with ``path``, ``verified`` and ``verification``: how the
    file was checked), ``cache`` (with ``library`` and ``path``: convertible now) or
    ``absent`` (with ``advice``: which file to place where). ``published_metrics`` are
    the source library's numbers for the tag; ``metrics`` repeats them except for an
    unverified stored file, whose weights may be other ones: then it is empty.
    """
    described = described_tags()
    if name not in described:
        model, _ = split_name(name)
        candidates = [n for n in described if n.startswith(f"{model}.")] or list(described)
        raise UnknownComponentError("weights", name, candidates)
    info = dict(described[name])
    info["published_metrics"] = info["metrics"]
    stored = stored_file(name, info["default"])
    if stored is not None:
        verification = stored_verification(stored)
        info.update(status="store", path=str(stored), verified=verification.verified, verification=verification.reason)
        if not verification.verified:
            info["metrics"] = {}
        return info
    found = cached_file(_sources(info))
    if found is not None:
        info.update(status="cache", library=found[0].library, path=str(found[1]))
        return info
    info.update(status="absent", advice="; or ".join(placement(s) for s in _sources(info)) or "no known source")
    return info


def stored_file(name: str, default: bool) -> Path | None:
    """The store's file of tag ``name`` (``model.tag``); for a default tag, a file stored
    before tags existed (``<model>.safetensors``) serves too."""
    for path in (store_path(name), *([store_path(split_name(name)[0])] if default else [])):
        if path.is_file():
            return path
    return None


def stored_verification(path: Path) -> Verification:
    """How the stored file at ``path`` was verified; an unreadable header is unverified."""
    try:
        return read_verification(path)
    except WeightsError as exc:
        return Verification(False, f"its header cannot be read ({exc})")


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


def tags_at_hand(model: str, *, besides: str = "") -> list[tuple[str, str]]:
    """``(tag name, where)`` for each of ``model``'s tags other than ``besides`` whose
    weights are here: in the store (``where`` is "the store") or in a library's cache."""
    found = []
    for name, info in sorted(described_tags().items()):
        if info["model"] != model or name == besides:
            continue
        if stored_file(name, info["default"]) is not None:
            found.append((name, "the store"))
        elif (cached := cached_file(_sources(info))) is not None:
            found.append((name, f"{cached[0].library}'s cache"))
    return found


def _sources(info: dict[str, Any]) -> tuple[WeightSource, ...]:
    return tuple(WeightSource(**{k: v for k, v in s.items() if k != "data_config"}) for s in info["sources"])
