"""Running registered converters over checkpoint files, and proving the result.

Converters (``registry_core.Converter``) are pure key and tensor maps; this module does
the rest. It reads the checkpoint safely and unwraps it (``weights/unwrap.py``), asks
``identify`` which layout it has and which class count and input channels its shapes
give, converts, and loads the result strictly into our model built with those sizes.
When the other library is installed, ``convert_from`` builds its model the same way
with the file's weights and compares eval outputs on a seeded input; the measured
difference and the provenance go into the written file's metadata. ``convert_checkpoint``
stops before writing: ``create(name, weights=FILE)`` loads a foreign file through it.

Given a weight tag, the converted model also carries the tag, its data config, class
names, metrics and license, and the header records whether the file's hash matched the
one the tag registers. ``pretrained.ensure_pretrained`` fills the local store with
this, from torchvision's or timm's own cache.
"""

from __future__ import annotations

import importlib.util
import json
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConversionError, RegistryCoreError, WeightsError
from ..model.compose import ComposedModel, main_logits
from ..plugins.host import default_host
from ..weights.assign import assign_weights
from ..weights.checkpoints import read_foreign, sha256, write_checkpoint
from ..weights.keymaps import Converter, StateDict
from ..weights.model_files import save
from ..weights.provenance import HASH_CHECK, ORIGIN, USER_FILE, hash_check
from ..weights.safetensors_io import read_metadata, read_tensors
from ..weights.tags import WeightTag
from ..weights.unwrap import ForeignCheckpoint
from .build import build_model
from .catalog import get_converter
from .identify import Identification, describe_miss, identify_weights
from .labels import tag_class_names
from .layouts import OURS
from .loading import load_file

DEFAULT_ATOL = 1e-4
LIBRARIES = ("torchvision", "timm")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class Converted:
    """A checkpoint converted in memory: our ``model`` with its weights, the weights in
    the source's layout (``theirs``, what verification loads into the other library's
    model), the ``converter`` used, what ``identify`` found, the sizes the model was
    built with, and the provenance a written file records (``facts``)."""

    model: ComposedModel
    theirs: StateDict
    converter: Converter
    found: Identification
    sizes: dict[str, int]
    facts: dict[str, str]


def convert_from(source: str, model: str | None, checkpoint: str | os.PathLike, out: str | os.PathLike, *,
                 verify: bool = True, verify_size: int | None = None, atol: float = DEFAULT_ATOL,
                 dtype: str | torch.dtype | None = None, allow_non_finite: bool = False,
                 tag: str | None = None, num_classes: int | None = None, in_chans: int | None = None,
                 ema: bool = False, origin: str = USER_FILE) -> dict[str, str]:
    """Convert ``source``'s checkpoint of ``model`` into our safetensors file ``out``.

    The checkpoint may be a training checkpoint (timm's ``train.py``, torchvision's
    reference scripts, Lightning; wrapped by DDP or ``torch.compile``): its weights are
    found and unwrapped, ``ema=True`` taking its EMA copy. ``model=None`` identifies it
    first (``identify_checkpoint``), tag included when its hash is registered. The
    class count and input channels come from the file's shapes; ``num_classes`` and
    ``in_chans`` are needed only where the shapes cannot say.

    Returns the provenance written into its metadata (with ``max_abs_diff`` when the
    outputs were compared, and ``source_unwrapped`` saying what was unwrapped), plus the
    model's ``num_classes`` and ``in_chans``. Raises ``ConversionError`` when the
    outputs differ by more than ``atol``. The file keeps the checkpoint's floating dtype
    unless ``dtype`` ("float32", "float16", "bfloat16") says otherwise; outputs are
    compared before that cast, in float32, so the check is of the key map. ``tag``
    (``"tv2_in1k"`` or ``"resnet50.tv2_in1k"``) names the registered weights the
    checkpoint holds, whose preprocessing and labels the file then records. ``origin``
    says where the checkpoint came from (a library's cache, or by default the user).
    """
    done = convert_checkpoint(checkpoint, source=source, model=model, tag=tag, num_classes=num_classes,
                              in_chans=in_chans, ema=ema, allow_non_finite=allow_non_finite, origin=origin)
    out_dtype = output_dtype(dtype, done.theirs)
    provenance = {**done.facts, "dtype": dtype_name(out_dtype)}
    if verify:
        provenance.update(_verify(done.converter, done.theirs, done.model, verify_size, atol, done.sizes))
    save(done.model.to(out_dtype), out, metadata=provenance)
    return {**provenance, "num_classes": str(done.model.num_classes), "in_chans": str(done.model.meta.input_size[0])}


def convert_checkpoint(checkpoint: str | os.PathLike, *, source: str | None = None, model: str | None = None,
                       tag: str | None = None, num_classes: int | None = None, in_chans: int | None = None,
                       ema: bool = False, allow_non_finite: bool = False, origin: str = USER_FILE,
                       weights: ForeignCheckpoint | None = None, fallback: str | None = None) -> Converted:
    """The checkpoint converted into our model, in memory. ``source`` and ``model``
    narrow the layouts it is compared with; a checkpoint that fits none is an error
    unless ``model`` and ``source`` (or a ``fallback`` source) are given: then it is
    loaded as that source's layout and the strict load names what does not fit.
    ``weights`` are the file's, when already read."""
    if model is not None:
        default_host().registry.get("model", model)  # an unknown name fails here, with close matches
    weights = weights if weights is not None else read_foreign(checkpoint, ema=ema)
    digest = sha256(checkpoint)
    found = identify_weights(weights, digest, source=source, model=model, ema=ema)
    if found.model is None and (model is None or (source or fallback) is None):
        raise WeightsError(f"{describe_miss(found)}; `registry-core identify {checkpoint}` shows more")
    model, source = found.model or model, found.source or source or fallback
    assert model is not None and source is not None  # one of the two branches above makes sure
    tag = tag or (found.tag if found.tag and found.tag.split(".")[0] == model else None)
    weight_tag = _weight_tag(model, tag)
    converter = Converter(OURS, model, dict, dict) if source == OURS else get_converter(source, model)
    theirs = (found.weights or weights).state
    converted = _apply(converter.to_ours, theirs, converter, "to_ours")
    given = {k: v for k, v in (("num_classes", num_classes), ("in_chans", in_chans)) if v is not None}
    sizes = {**found.options, **given}
    options = {**converter.create_kwargs, **(weight_tag.create_kwargs if weight_tag else {}), **sizes}
    hint = "" if found.model else f"; `registry-core identify {checkpoint}` compares it with every registered layout"
    ours = assign_weights(lambda: build_model(model, **options), converted, on_error=f" (converted by {converter.key}){hint}",
                          allow_non_finite=allow_non_finite, source=str(checkpoint))
    facts = {
        "source": source,
        "source_model": converter.source_name,
        "source_file": Path(checkpoint).name,
        "source_sha256": digest,
        "converter": converter.key,
        "converter_version": converter.version,
    }
    if found.unwrapped:
        facts["source_unwrapped"] = found.unwrapped
    if weight_tag is not None:
        facts.update(_stamp_tag(ours, weight_tag, source, digest, Path(checkpoint).name, origin))
    return Converted(ours, theirs, converter, found, sizes, facts)


def _weight_tag(model: str, tag: str | None) -> WeightTag | None:
    if not tag:
        return None
    name = tag if tag.startswith(f"{model}.") else f"{model}.{tag}"
    return default_host().registry.get("weights", name).obj


def _stamp_tag(model: ComposedModel, tag: WeightTag, library: str, digest: str, file_name: str,
               origin: str) -> dict[str, str]:
    """Put ``tag``'s preprocessing, labels and name on ``model`` (``save`` records them)
    and return the tag's other facts for the header, with how the file was verified:
    its hash against the one the tag registers for ``library``'s file (a library's
    cache holding another file of the tag, such as timm's hub copy, has none
    registered), and where it came from. A hash that differs is also a warning."""
    source = tag.source(library)
    model.pretrained_tag = tag.tag
    model.data_config = tag.data_for(source).with_channels(model.meta.input_size[0])
    names = tag_class_names(tag, source)
    model.class_names = names if names is not None and len(names) == model.num_classes else None
    applies = source is not None and (origin == USER_FILE or bool(source.sha256) or file_name == source.file)
    registered = source.hash_prefix if source is not None and applies else ""
    check = hash_check(digest, registered)
    if registered and not digest.startswith(registered):
        warnings.warn(f"the checkpoint's sha256 {digest[:12]}... does not start with {registered}, the hash "
                      f"registered for {tag.name} from {library}: it may hold other weights", UserWarning, stacklevel=5)
    return {"metrics": json.dumps(dict(tag.metrics), sort_keys=True), "license": tag.license, HASH_CHECK: check,
            ORIGIN: origin}


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
        sizes: dict[str, int] = {k: ours.create_kwargs[k] for k in ("num_classes", "in_chans") if k in ours.create_kwargs}
        provenance.update(_verify(converter, exported, ours, verify_size, atol, sizes))
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


def _verify(converter: Converter, theirs: StateDict, ours: ComposedModel, size: int | None, atol: float,
            sizes: Mapping[str, int]) -> dict[str, str]:
    """Compare the other library's model, built with ``sizes`` (and the options of ours
    it shares, ``converter.source_options``) and holding ``theirs``, with ``ours`` on a
    seeded input."""
    if converter.source not in LIBRARIES or importlib.util.find_spec(converter.source) is None:
        reason = f"{converter.source} is not installed" if converter.source in LIBRARIES else f"no way to build {converter.source} models"
        warnings.warn(f"outputs not compared: {reason}", UserWarning, stacklevel=3)
        return {"verified": f"no ({reason})"}
    shared = {name: ours.create_kwargs[option] for option, name in converter.source_options.items()
              if option in ours.create_kwargs}
    other = assign_weights(lambda: source_model(converter, like=theirs, options=shared, **sizes), dict(theirs),
                           on_error=f" (loading into {converter.source}'s {converter.source_name})",
                           allow_non_finite=True)  # our side has already checked these values
    size = size or ours.meta.input_size[-1]
    diff = max_output_difference(other, ours, size)
    if not diff <= atol:
        raise ConversionError(f"{converter.key}: outputs differ by {diff:.3g} at {size}x{size} (allowed {atol:g}); "
                              "pass --no-verify to write the file anyway")
    return {"max_abs_diff": f"{diff:.3g}", "verified": f"eval outputs at {size}x{size}, seed 0"}


def source_model(converter: Converter, *, num_classes: int | None = None, in_chans: int | None = None,
                 like: Mapping[str, Tensor] | None = None, options: Mapping[str, Any] | None = None) -> nn.Module:
    """The converter's model in the other library, with random weights (never
    downloaded), built with ``num_classes`` and ``in_chans`` when given, and ``options``
    (in that library's names, such as a ViT's image size). torchvision's
    models take no ``in_chans``: their convolutions that take the image are rebuilt for
    the input channels of ``like`` (a state dict in that library's layout)."""
    kwargs: dict[str, Any] = {**converter.source_kwargs, **(options or {})}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if converter.source == "torchvision":
        import torchvision

        model = torchvision.models.get_model(converter.source_name, weights=None, **kwargs)
        if in_chans is not None and like is not None:
            _fit_input_convs(model, like)
        return model
    import timm

    if in_chans is not None:
        kwargs["in_chans"] = in_chans
    return timm.create_model(converter.source_name, pretrained=False, **kwargs)


def _fit_input_convs(model: nn.Module, like: Mapping[str, Tensor]) -> None:
    """Rebuild each ``Conv2d`` whose input channels differ from ``like``'s weight for it."""
    for name, module in list(model.named_modules()):
        weight = like.get(f"{name}.weight")
        if not isinstance(module, nn.Conv2d) or weight is None or weight.dim() != 4:
            continue
        channels = weight.shape[1] * module.groups
        if channels != module.in_channels:
            parent, _, attr = name.rpartition(".")
            replacement = nn.Conv2d(channels, module.out_channels, module.kernel_size,  # type: ignore[arg-type]
                                    module.stride, module.padding, module.dilation,  # type: ignore[arg-type]
                                    module.groups, bias=module.bias is not None)
            setattr(model.get_submodule(parent) if parent else model, attr, replacement)


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
