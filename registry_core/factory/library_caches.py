"""Where torchvision's and timm's own ``pretrained=True`` caches keep checkpoints.

Only paths are computed here; the files are read, converted and verified by
``conversion``. Nothing is ever downloaded.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..weights.tags import WeightSource

if TYPE_CHECKING:  # the catalogue computes cache paths without torch
    from ..weights.keymaps import Converter

HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

CACHE_PREFERENCE = ("torchvision", "timm")
"""Whose cache ``pretrained=True`` converts from when several hold the model: torchvision's
first (for the models it has, whose names and weights ours follow), then timm's; a
converter of any other source comes after these, by name. See ``docs/weights.md``."""


def cache_rank(library: str) -> tuple[int, str]:
    """Where ``library``'s cache comes in ``CACHE_PREFERENCE`` order (others after, by name)."""
    order = CACHE_PREFERENCE.index(library) if library in CACHE_PREFERENCE else len(CACHE_PREFERENCE)
    return order, library


def by_cache_preference(converters: list[Converter]) -> list[Converter]:
    """``converters`` in the order their sources' caches are tried."""
    return sorted(converters, key=lambda c: cache_rank(c.source))


def sources_by_preference(sources: tuple[WeightSource, ...]) -> list[WeightSource]:
    """A weight tag's sources in the order their caches are tried."""
    return sorted(sources, key=lambda s: cache_rank(s.library))


def source_files(source: WeightSource) -> list[Path]:
    """Where ``source``'s library keeps the tag's file after its own download, in the
    order that library looks: timm's Hugging Face copy first, then torch.hub's folder.
    Computed without importing torch, torchvision or timm."""
    files = []
    if source.hub_id:
        repo, _, revision = source.hub_id.partition("@")
        files += [_hf_cached(repo, name, revision or "main") for name in HF_WEIGHT_FILES]
    if source.file:
        files.append(hub_checkpoints() / source.file)
    return files


def cached_source_file(source: WeightSource) -> Path | None:
    return next((p for p in source_files(source) if p.is_file()), None)


def hub_checkpoints() -> Path:
    """torch.hub's download folder: ``$TORCH_HOME/hub/checkpoints`` (``TORCH_HOME``
    defaults to ``$XDG_CACHE_HOME/torch``), or what ``torch.hub.set_dir`` chose in this
    process when torch is loaded."""
    hub = sys.modules.get("torch.hub")
    if hub is not None:
        return Path(hub.get_dir()) / "checkpoints"
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "torch")
    return Path(torch_home).expanduser() / "hub" / "checkpoints"


def cached_checkpoint(converter: Converter) -> Path | None:
    """Where ``converter.source``'s own pretrained=True cache would hold this model's
    default checkpoint, if that file exists."""
    if converter.source not in ("torchvision", "timm") or importlib.util.find_spec(converter.source) is None:
        return None
    candidates = _torchvision_files(converter.source_name) if converter.source == "torchvision" else _timm_files(converter.source_name)
    return next((p for p in candidates if p.is_file()), None)


def _torch_hub_checkpoint(url: str) -> Path:
    import torch.hub  # noqa: F401  (hub_checkpoints asks it for a folder set in-process)

    return hub_checkpoints() / os.path.basename(url)


def _torchvision_files(name: str) -> list[Path]:
    from torchvision.models import get_model_weights

    try:
        default = get_model_weights(name).DEFAULT
    except (ValueError, KeyError, AttributeError):
        return []
    return [_torch_hub_checkpoint(default.url)]


def _timm_files(name: str) -> list[Path]:
    """timm prefers the Hugging Face hub copy (``hf_hub_id``), then its ``url``."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    if cfg is None:
        return []
    files = []
    if cfg.hf_hub_id:
        repo, _, revision = cfg.hf_hub_id.partition("@")
        names = ([cfg.hf_hub_filename] if cfg.hf_hub_filename else []) + list(HF_WEIGHT_FILES)
        files += [_hf_cached(repo, n, revision or "main") for n in names]
    if isinstance(cfg.url, str) and cfg.url:
        files.append(_torch_hub_checkpoint(cfg.url))
    return files


def hf_hub_cache() -> Path:
    """Where the Hugging Face hub keeps downloads (``HF_HUB_CACHE``, ``HF_HOME``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return cache / "huggingface" / "hub"


def _hf_cached(repo: str, filename: str, revision: str) -> Path:
    """The hub cache layout: ``models--<org>--<name>/snapshots/<commit>/<file>``, the
    commit named by ``refs/<revision>`` (or the revision itself, when it is a commit)."""
    folder = hf_hub_cache() / f"models--{repo.replace('/', '--')}"
    ref = folder / "refs" / revision
    commit = ref.read_text().strip() if ref.is_file() else revision
    return folder / "snapshots" / commit / filename
