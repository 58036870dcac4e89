"""Every registered layout's keys and shapes, with the dimensions a checkpoint may size.

A layout is what one library's state dict of one model looks like: ours is the model's
own state dict; each converter's is our model built on the meta device and mapped
through ``converter.from_ours``, so no other library is needed. Each model is built
twice, once as registered and once with an unusual class count and number of input
channels (``PROBE``): a dimension that follows one of those options is marked with the
option's name, so a checkpoint fine-tuned to 7 classes, or trained on 1-channel
images, still fits its layout and says which sizes it has.

Layouts are computed once per plugin host (per model when only one is asked for) and,
when no host is loaded in this process, cached next to the manifest
(``$REGISTRY_CORE_HOME/manifests``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..files import atomic_write
from . import manifest
from .catalog import default_host

OURS = "registry-core"
PROBE = {"num_classes": 7, "in_chans": 5}  # sizes no registered model has by default
SHOWN = 4  # differences listed per layout
CACHE_VERSION = 2

Dim = int | str  # a size, or the create option it follows ("num_classes", "in_chans")


@dataclass(frozen=True)
class Layout:
    """One library's layout of one model: ``shapes`` maps each key to its dimensions;
    ``sizes`` holds the model's default value of each option a dimension follows."""

    model: str
    source: str
    shapes: Mapping[str, tuple[Dim, ...]]
    sizes: Mapping[str, int]

    def fit(self, found: Mapping[str, tuple[int, ...]]) -> Fit:
        """How ``found`` (a checkpoint's keys and shapes) compares with this layout."""
        keys = set(found) | set(self.shapes)
        missing = sorted(set(self.shapes) - set(found))
        unexpected = sorted(set(found) - set(self.shapes))
        sizes: dict[str, int] = {}
        misshaped = sorted(k for k in set(found) & set(self.shapes) if not _unify(self.shapes[k], found[k], sizes))
        agree = len(keys) - len(missing) - len(unexpected) - len(misshaped)
        differences = []
        if missing:
            differences.append(f"{len(missing)} key(s) missing, e.g. {', '.join(missing[:SHOWN])}")
        if unexpected:
            differences.append(f"{len(unexpected)} unexpected key(s), e.g. {', '.join(unexpected[:SHOWN])}")
        if misshaped:
            shown = ", ".join(f"{k} {tuple(found[k])} instead of {self.expected(k, sizes)}" for k in misshaped[:SHOWN])
            differences.append(f"{len(misshaped)} shape(s) differ: {shown}")
        return Fit(self, agree / len(keys) if keys else 0.0, tuple(differences), sizes)

    def expected(self, key: str, sizes: Mapping[str, int] | None = None) -> tuple[int, ...]:
        """``key``'s shape with each option at ``sizes`` (else at the model's default)."""
        sizes = {**self.sizes, **(sizes or {})}
        return tuple(sizes[d] if isinstance(d, str) else d for d in self.shapes[key])


@dataclass(frozen=True)
class Fit:
    """A checkpoint compared with one layout: the share of keys that agree (over the
    union of keys), what differs, and the sizes its shapes gave each option."""

    layout: Layout
    score: float
    differences: tuple[str, ...]
    sizes: Mapping[str, int]

    @property
    def exact(self) -> bool:
        return not self.differences

    def sizes_changed(self) -> dict[str, int]:
        """The options whose size in the checkpoint differs from the model's default."""
        return {k: v for k, v in self.sizes.items() if v != self.layout.sizes.get(k)}


def _unify(expected: tuple[Dim, ...], found: tuple[int, ...], sizes: dict[str, int]) -> bool:
    """Whether ``found`` fits ``expected``, binding each named dimension in ``sizes``
    (one value per option across all keys)."""
    if len(expected) != len(found):
        return False
    bound = dict(sizes)
    for want, have in zip(expected, found):
        if isinstance(want, str):
            if bound.setdefault(want, have) != have:
                return False
        elif want != have:
            return False
    sizes.update(bound)
    return True


def layouts(*, source: str | None = None, model: str | None = None) -> list[Layout]:
    """Every registered layout, or those of ``source`` and/or ``model``."""
    return [layout for layout in _all(source, model)
            if (source is None or layout.source == source) and (model is None or layout.model == model)]


def _all(source: str | None, model: str | None) -> list[Layout]:
    host = manifest.live_host()
    if host is not None:
        return _computed(host, source, model)
    key = manifest.manifest_key()
    index = manifest.manifest_path(key)
    path = index.with_name(f"{index.stem}-layouts.json")
    cached = _read_cache(path, key)
    if cached is not None:
        return cached
    host = default_host()  # loads the plugins
    if source is not None or model is not None:
        return _computed(host, source, model)
    found = _computed(host, None, None)
    try:
        with atomic_write(path, mode="w") as handle:
            json.dump({"key": key, "version": CACHE_VERSION, "layouts": [
                [layout.model, layout.source, {k: list(v) for k, v in layout.shapes.items()}, dict(layout.sizes)]
                for layout in found]}, handle)
    except OSError:
        pass
    return found


def _computed(host: Any, source: str | None, model: str | None) -> list[Layout]:
    """The layouts of ``model``, or of every model ``source`` has a converter for (every
    model when neither is given), of ``source`` alone when given; each computed once per
    host."""
    registry = host.registry
    if model is not None:
        models = [model]
    elif source is not None and source != OURS:
        models = sorted({registry.get("converter", key).obj.model for key in registry.names("converter", f"{source}/*")})
    else:
        models = registry.names("model")
    return [layout for name in models for layout in _model_layouts(host, name, source)]


def _read_cache(path: Any, key: dict[str, Any]) -> list[Layout] | None:
    try:
        cached = json.loads(path.read_text())
        if cached.get("key") != key or cached.get("version") != CACHE_VERSION:
            return None
        return [Layout(m, lib, {k: tuple(v) for k, v in shapes.items()}, sizes) for m, lib, shapes, sizes in cached["layouts"]]
    except (OSError, ValueError, AttributeError, TypeError, KeyError):
        return None


@functools.cache
def _model_layouts(host: Any, model: str, source: str | None = None) -> list[Layout]:
    """Our layout of ``model`` and each of its converters' (``source``'s alone when
    given), computed once per host (``host`` keys the cache). A model that cannot be
    built, or a converter that cannot map a meta state dict, is left out (``list``
    reports the first; the second cannot be recognised)."""
    registry = host.registry
    converters = [c for c in (registry.get("converter", key).obj for key in registry.names("converter", f"*/{model}"))
                  if c.model == model and source in (None, c.source)]
    builds: dict[str, tuple[dict, dict | None, dict[str, int]] | None] = {}

    def built(options: dict[str, Any]) -> tuple[dict, dict | None, dict[str, int]] | None:
        key = repr(sorted(options.items()))
        if key not in builds:
            builds[key] = _built(model, options)
        return builds[key]

    found = []
    if source in (None, OURS) and (ours := built({})) is not None:
        found.append(_symbolic(model, OURS, *ours))
    for converter in converters:
        pair = built(dict(converter.create_kwargs))
        if pair is None:
            continue
        default, probed, sizes = pair
        try:
            mapped = converter.from_ours(default)
        except Exception:  # a converter fed a meta state dict may fail in its own way
            continue
        try:
            mapped_probe = converter.from_ours(probed) if probed is not None else None
        except Exception:  # one that cannot map other sizes recognises the default ones only
            mapped_probe = None
        found.append(_symbolic(model, converter.source, mapped, mapped_probe, sizes))
    return found


def _built(model: str, options: dict[str, Any]) -> tuple[dict, dict | None, dict[str, int]] | None:
    """``model``'s meta state dict as registered, with ``PROBE`` sizes (``None`` when it
    cannot be built so), and its default sizes."""
    from ..model.compose import meta_device
    from .build import build_model

    try:
        with meta_device():
            default = build_model(model, **options)
    except Exception:  # an unbuildable model cannot be recognised; `list` reports it
        return None
    sizes = {"num_classes": default.num_classes, "in_chans": default.meta.input_size[0]}
    for probe in (PROBE, *({k: v} for k, v in PROBE.items())):
        try:
            with meta_device():
                probed = build_model(model, **{**options, **probe})
            return default.state_dict(), probed.state_dict(), sizes
        except Exception:  # some models fix their input channels or classes
            continue
    return default.state_dict(), None, sizes


def _symbolic(model: str, source: str, default: dict, probed: dict | None, sizes: dict[str, int]) -> Layout:
    """A layout whose dimensions that moved from a default size to its ``PROBE`` value
    are named after that option."""
    shapes: dict[str, tuple[Dim, ...]] = {}
    for key, tensor in default.items():
        dims: list[Dim] = list(tensor.shape)
        other = probed.get(key) if probed is not None else None
        if other is not None and other.dim() == len(dims):
            for i, (was, now) in enumerate(zip(tensor.shape, other.shape)):
                option = next((o for o, v in PROBE.items() if now == v and was == sizes[o]), None)
                if was != now and option is not None:
                    dims[i] = option
        shapes[key] = tuple(dims)
    used = {d for dims in shapes.values() for d in dims if isinstance(d, str)}
    return Layout(model, source, shapes, {k: v for k, v in sizes.items() if k in used})
