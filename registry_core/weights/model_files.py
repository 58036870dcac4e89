"""Saving a model as a self-describing weights file (its tensors plus ``metadata.py``'s header)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import WeightsError
from ..model.compose import ComposedModel
from .assign import names_shown
from .metadata import model_metadata
from .safetensors_io import write_safetensors


def save(model: ComposedModel, path: str | os.PathLike, *, metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``model``'s weights to a safetensors file, atomically.

    ``metadata`` adds string entries to the file's ``__metadata__`` (a trainer may
    record the epoch or the metric); it may not replace the keys ``save`` writes
    itself (see ``docs/weights.md``). A fused model is refused: its convolutions hold
    folded BatchNorm weights and its BatchNorms are gone, so the file would not load
    into the architecture its header names.
    """
    if getattr(model, "fused", False):
        raise WeightsError(f"{model.model_name or 'this model'} was fused for inference (model.fuse()): its BatchNorm "
                           "layers are folded into the convolutions, so its state dict no longer matches the "
                           "architecture and could not be loaded back; save the model before fusing it")
    header = model_metadata(model)
    extra = dict(metadata or {})
    not_text = [repr(k) for k, v in extra.items() if not (isinstance(k, str) and isinstance(v, str))]
    if not_text:
        raise WeightsError(f"metadata must map strings to strings; not so for {', '.join(not_text)}")
    reserved = sorted(set(extra) & set(header))
    if reserved:
        raise WeightsError(f"metadata keys {', '.join(reserved)} are written by save() itself")
    state = model.state_dict()
    on_meta = [k for k, v in state.items() if v.is_meta]
    if on_meta:
        raise WeightsError(f"cannot save tensors that hold no data (meta device): {names_shown(on_meta)}")
    write_safetensors({k: v.detach().contiguous() for k, v in state.items()}, path, {**header, **extra})
    return Path(path)
