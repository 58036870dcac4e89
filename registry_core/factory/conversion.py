"""Running registered converters over checkpoint files, and proving the result.

Converters (``registry_core.Converter``) are pure key and tensor maps; this module does
the rest: reads the checkpoint safely, converts, loads the result strictly, and, when
the other library is installed, builds its model with the other library's weights and
ours with the converted ones and compares eval outputs on a seeded input. The measured
difference and the provenance go into the written file's metadata.

Given a weight tag, the written file also records the tag, its data config, class
names, metrics and license, so the file alone says how to preprocess and label.
``pretrained.ensure_pretrained`` fills the local store with this, from torchvision's or
timm's own cache.
"""

from __future__ import annotations

import importlib.util
import json
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
from ..weights.tags import WeightTag
from .build import build_model
from .catalog import get_converter
from .labels import tag_class_names
from .loading import load_file

DEFAULT_ATOL = 1e-4
LIBRARIES = ("torchvision", "timm")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def convert_from(source: str, model: str | None, checkpoint: str | os.PathLike, out: str | os.PathLike, *,
                 verify: bool = True, verify_size: int | None = None, atol: float = DEFAULT_ATOL,
                 dtype: str | torch.dtype | None = None, allow_non_finite: bool = False,
                 tag: str | None = None) -> dict[str, str]:
    """Convert ``source``'s checkpoint of ``model`` into our safetensors file ``out``.

    Returns the provenance written into its metadata (with ``max_abs_diff`` when the
    outputs were compared). Raises ``ConversionError`` when they differ by more than
    ``atol``. The file keeps the checkpoint's floating dtype unless ``dtype``
    ("float32", "float16", "bfloat16") says otherwise; outputs are compared before
    that cast, in float32, so the check is of the key map. ``tag`` (``"tv2_in1k"`` or
    ``"resnet50.tv2_in1k"``) names the registered weights the checkpoint holds, whose
    preprocessing and labels the file then records; ``model=None`` identifies the
    checkpoint first (``identify_checkpoint``), tag included when its hash is registered.
    """
    if model is None:
        from .identify import identify_checkpoint

        found = identify_checkpoint(checkpoint, source=source).require()
        assert found.model is not None  # require() makes sure
        model, tag = found.model, tag or found.tag
    weights = _weight_tag(model, tag)
    converter = get_converter(source, model)
    theirs = read_checkpoint(checkpoint)
    out_dtype = output_dtype(dtype, theirs)
    converted = _apply(converter.to_ours, theirs, converter, "to_ours")
    options = {**converter.create_kwargs, **(weights.create_kwargs if weights else {})}
    ours = assign_weights(lambda: build_model(model, **options), converted,
                          on_error=f" (converted by {converter.key})", allow_non_finite=allow_non_finite,
                          source=str(checkpoint))
    digest = sha256(checkpoint)
    provenance = {
        "source": source,
        "source_model": converter.source_name,
        "source_file": Path(checkpoint).name,
        "source_sha256": digest,
        "converter": converter.key,
        "converter_version": converter.version,
        "dtype": dtype_name(out_dtype),
    }
    if weights is not None:
        provenance.update(_stamp_tag(ours, weights, source, digest))
    if verify:
        provenance.update(_verify(converter, theirs, ours, verify_size, atol))
    save(ours.to(out_dtype), out, metadata=provenance)
    return provenance


def _weight_tag(model: str, tag: str | None) -> WeightTag | None:
    if not tag:
        return None
    name = tag if tag.startswith(f"{model}.") else f"{model}.{tag}"
    return default_host().registry.get("weights", name).obj


def _stamp_tag(model: ComposedModel, tag: WeightTag, library: str, digest: str) -> dict[str, str]:
    """Put ``tag``'s preprocessing, labels and name on ``model`` (``save`` records them)
    and return the tag's other facts for the header; warn when the file's hash is not
    the one the tag registers for ``library``."""
    source = tag.source(library)
    model.pretrained_tag = tag.tag
    model.data_config = tag.data_for(source).with_channels(model.meta.input_size[0])
    names = tag_class_names(tag, source)
    model.class_names = names if names is not None and len(names) == model.num_classes else None
    facts = {"metrics": json.dumps(dict(tag.metrics), sort_keys=True), "license": tag.license}
    prefix = source.hash_prefix if source is not None else ""
    if prefix:
        facts["source_hash_check"] = "matches" if digest.startswith(prefix) else f"differs from {prefix}"
        if not digest.startswith(prefix):
            warnings.warn(f"the checkpoint's sha256 {digest[:12]}... does not start with {prefix}, the hash "
                          f"registered for {tag.name} from {library}: it may hold other weights", UserWarning, stacklevel=4)
    return facts


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
