"""Running registered converters over checkpoint files, and proving the result.

Converters (``registry_core.Converter``) are pure key and tensor maps; this module does
the rest: reads the checkpoint safely, converts, loads the result strictly, and, when
the other library is installed, builds its model with the other library's weights and
ours with the converted ones and compares eval outputs on a seeded input. The measured
difference and the provenance go into the written file's metadata.

``ensure_pretrained`` fills the local store from torchvision's or timm's own cache the
same way, once.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConversionError, RegistryCoreError, WeightsError
from ..model.compose import ComposedModel, main_logits
from ..plugins.host import default_host
from ..weights.assign import assign_weights
from ..weights.checkpoints import read_checkpoint, sha256, write_checkpoint
from ..weights.keymaps import Converter, StateDict
from ..weights.model_files import save
from ..weights.safetensors_io import read_metadata, read_tensors
from .build import build_model
from .catalog import get_converter
from .library_caches import by_cache_preference, cached_checkpoint
from .loading import load_file
from .store import store_path

DEFAULT_ATOL = 1e-4
LIBRARIES = ("torchvision", "timm")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def convert_from(source: str, model: str, checkpoint: str | os.PathLike, out: str | os.PathLike, *,
                 verify: bool = True, verify_size: int | None = None, atol: float = DEFAULT_ATOL,
                 dtype: str | torch.dtype | None = None, allow_non_finite: bool = False) -> dict[str, str]:
    """Convert ``source``'s checkpoint of ``model`` into our safetensors file ``out``.

    Returns the provenance written into its metadata (with ``max_abs_diff`` when the
    outputs were compared). Raises ``ConversionError`` when they differ by more than
    ``atol``. The file keeps the checkpoint's floating dtype unless ``dtype``
    ("float32", "float16", "bfloat16") says otherwise; outputs are compared before
    that cast, in float32, so the check is of the key map.
    """
    converter = get_converter(source, model)
    theirs = read_checkpoint(checkpoint)
    out_dtype = output_dtype(dtype, theirs)
    converted = _apply(converter.to_ours, theirs, converter, "to_ours")
    ours = assign_weights(lambda: build_model(model, **converter.create_kwargs), converted,
                          on_error=f" (converted by {converter.key})", allow_non_finite=allow_non_finite,
                          source=str(checkpoint))
    provenance = {
        "source": source,
        "source_model": converter.source_name,
        "source_file": Path(checkpoint).name,
        "source_sha256": sha256(checkpoint),
        "converter": converter.key,
        "converter_version": converter.version,
        "dtype": dtype_name(out_dtype),
    }
    if verify:
        provenance.update(_verify(converter, theirs, ours, verify_size, atol))
    save(ours.to(out_dtype), out, metadata=provenance)
    return provenance


def convert_to(target: str, model: str, checkpoint: str | os.PathLike, out: str | os.PathLike, *,
               verify: bool = True, verify_size: int | None = None, atol: float = DEFAULT_ATOL,
               dtype: str | torch.dtype | None = None, allow_non_finite: bool = False) -> dict[str, str]:
    """Export our weights file of ``model`` to ``target``'s layout (``.safetensors`` or
    ``.pth``), in the file's floating dtype unless ``dtype`` says otherwise."""
    recorded = read_metadata(checkpoint).get("model", model)
    if recorded != model:
        raise WeightsError(f"{checkpoint} holds weights for {recorded!r}, not {model!r}")
    converter = get_converter(target, model)
    out_dtype = output_dtype(dtype, read_tensors(checkpoint)[0])
    ours = load_file(checkpoint, allow_non_finite=allow_non_finite)
    exported = _apply(converter.from_ours, ours.state_dict(), converter, "from_ours")
    provenance = {"exported_from": "registry-core", "model": model, "converter": converter.key,
                  "converter_version": converter.version, "source_sha256": sha256(checkpoint),
                  "dtype": dtype_name(out_dtype)}
    if verify:
        provenance.update(_verify(converter, exported, ours, verify_size, atol))
    write_checkpoint({k: v.to(out_dtype) if v.is_floating_point() else v for k, v in exported.items()}, out, provenance)
    return provenance


def output_dtype(dtype: str | torch.dtype | None, state: Mapping[str, Tensor]) -> torch.dtype:
    """The floating dtype a conversion writes: ``dtype`` if given, else the source's
    own (its one floating dtype; for a mix, the widest, float32 for half with bfloat16)."""
    if dtype is not None:
        chosen = DTYPES.get(dtype) if isinstance(dtype, str) else dtype
        if chosen is None or chosen not in DTYPES.values():
            raise ConversionError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
        return chosen
    found = {v.dtype for v in state.values() if v.is_floating_point()}
    if len(found) == 1:
        return found.pop()
    widest = max(found, key=lambda d: d.itemsize, default=torch.float32)
    return widest if widest.itemsize > 2 else torch.float32


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def ensure_pretrained(name: str, *, allow_non_finite: bool = False) -> Path:
    """The store's file for ``name``; when it is missing and torchvision's or timm's
    cache holds a checkpoint a registered converter understands, that checkpoint is
    converted (and verified) into the store first, trying the caches in
    ``CACHE_PREFERENCE`` order. Otherwise the error says which ``registry-core convert``
    command would fill the store."""
    registry = default_host().registry
    registry.get("model", name)  # an unknown name fails here, with suggestions
    path = store_path(name)
    if path.is_file():
        return path
    converters = by_cache_preference([registry.get("converter", key).obj for key in registry.names("converter", f"*/{name}")])
    for converter in converters:
        cached = cached_checkpoint(converter)
        if cached is not None:
            warnings.warn(f"converting {converter.source}'s cached {cached} into {path} (once)", UserWarning, stacklevel=3)
            convert_from(converter.source, name, cached, path, allow_non_finite=allow_non_finite)
            return path
    commands = "; or ".join(
        f"registry-core convert --from {c.source} --model {name} --checkpoint FILE --out {path}" for c in converters
    )
    advice = f"convert a checkpoint you have: {commands}" if converters else "no converter is registered for it either"
    raise WeightsError(f"no pretrained weights for {name!r} in {path.parent} (nothing is downloaded); {advice}")


def _apply(fn: Callable[[StateDict], StateDict], state: Mapping[str, Tensor], converter: Converter, direction: str) -> StateDict:
    try:
        return fn(dict(state))
    except RegistryCoreError:
        raise
    except Exception as exc:  # a converter fed the wrong checkpoint fails in its own way
        raise ConversionError(f"converter {converter.key} ({direction}) failed: {type(exc).__name__}: {exc}") from None


def _verify(converter: Converter, theirs: StateDict, ours: ComposedModel, size: int | None, atol: float) -> dict[str, str]:
    """Compare the other library's model holding ``theirs`` with ``ours`` on a seeded input."""
    if converter.source not in LIBRARIES or importlib.util.find_spec(converter.source) is None:
        reason = f"{converter.source} is not installed" if converter.source in LIBRARIES else f"no way to build {converter.source} models"
        warnings.warn(f"outputs not compared: {reason}", UserWarning, stacklevel=3)
        return {"verified": f"no ({reason})"}
    other = assign_weights(lambda: source_model(converter), dict(theirs),
                           on_error=f" (loading into {converter.source}'s {converter.source_name})",
                           allow_non_finite=True)  # our side has already checked these values
    size = size or ours.meta.input_size[-1]
    diff = max_output_difference(other, ours, size)
    if not diff <= atol:
        raise ConversionError(f"{converter.key}: outputs differ by {diff:.3g} at {size}x{size} (allowed {atol:g}); "
                              "pass --no-verify to write the file anyway")
    return {"max_abs_diff": f"{diff:.3g}", "verified": f"eval outputs at {size}x{size}, seed 0"}


def source_model(converter: Converter) -> nn.Module:
    """The converter's model in the other library, with random weights (never downloaded)."""
    if converter.source == "torchvision":
        import torchvision

        return torchvision.models.get_model(converter.source_name, weights=None, **converter.source_kwargs)
    import timm

    return timm.create_model(converter.source_name, pretrained=False, **converter.source_kwargs)


def max_output_difference(other: nn.Module, ours: ComposedModel, size: int, *, batch: int = 1, seed: int = 0) -> float:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, ours.meta.input_size[0], size, size, generator=generator)
    was = other.training, ours.training
    other.eval()
    ours.eval()
    with torch.no_grad():
        expected, got = main_logits(other(x)), main_logits(ours(x))
    other.train(was[0])
    ours.train(was[1])
    if expected.shape != got.shape:
        raise ConversionError(f"output shapes differ: {tuple(expected.shape)} in the other library, {tuple(got.shape)} here")
    return (expected - got).abs().max().item()


def verification_summary(provenance: Mapping[str, Any]) -> str:
    if "max_abs_diff" in provenance:
        return f"max |difference| {provenance['max_abs_diff']} ({provenance['verified']})"
    return f"not verified: {provenance.get('verified', 'skipped (--no-verify)')}"
