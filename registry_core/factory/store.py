"""The local weights store behind ``create(name, pretrained=True)``: a plain lookup.

Weights live in ``<REGISTRY_CORE_HOME>/weights/<name>.safetensors``. Filling the store
from torchvision's or timm's own cache is conversion's job
(``pretrained.ensure_pretrained``); nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path

from ..files import home


def store_path(name: str) -> Path:
    """Where the store keeps ``name``'s weights (the file may not exist)."""
    return home() / "weights" / f"{name}.safetensors"
