"""What is this checkpoint? Recognising a file by its key/shape signature and its hash.

Every registered converter describes a layout without any other library installed:
our model built on the meta device, mapped through ``converter.from_ours``, gives the
keys and shapes of that library's state dict. Our own layout is the model's state dict.
A checkpoint is compared with all of them, a third party's converters included; the
one whose keys and shapes all agree names the model and the source. Its sha256 is
compared with the hashes weight tags register, which names the tag.

The signatures are computed once per set of installed plugins and kept next to the
manifest (``$REGISTRY_CORE_HOME/manifests``).
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RegistryCoreError, WeightsError
from ..files import atomic_write
from ..weights.checkpoints import read_checkpoint, sha256
from ..weights.safetensors_io import read_metadata
from . import manifest
from .catalog import default_host
from .library_caches import CACHE_PREFERENCE
from .pretrained import _described

OURS = "registry-core"
SHOWN = 4  # differences listed per candidate


@dataclass(frozen=True)
class Candidate:
    """One registered layout compared with the checkpoint."""

    model: str
    source: str  # a converter's library, or "registry-core" for our own layout
    score: float  # the share of keys present in both with equal shapes, over the union of keys
    differences: tuple[str, ...] = ()

    @property
    def exact(self) -> bool:
        return not self.differences


@dataclass(frozen=True)
class Identification:
    """What ``identify_checkpoint`` found. ``model``/``source`` are set when a layout
    matches exactly (the first of ``matches`` in cache-preference order), ``tag`` when
    the file's hash is a registered tag's; ``closest`` lists the nearest layouts."""

    path: str
    sha256: str
    model: str | None = None
    source: str | None = None
    tag: str | None = None
    matches: tuple[Candidate, ...] = ()
    closest: tuple[Candidate, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def require(self) -> Identification:
        """This identification, or a ``WeightsError`` saying what the closest layouts differ in."""
        if self.model is None:
            raise WeightsError(describe_miss(self))
        return self

    def as_dict(self) -> dict[str, Any]:
        def candidate(c: Candidate) -> dict[str, Any]:
            return {"model": c.model, "source": c.source, "score": round(c.score, 4), "differences": list(c.differences)}

        return {"path": self.path, "sha256": self.sha256, "model": self.model, "source": self.source, "tag": self.tag,
                "matches": [candidate(c) for c in self.matches], "closest": [candidate(c) for c in self.closest],
                "notes": list(self.notes)}


def identify_checkpoint(path: str | os.PathLike, *, source: str | None = None) -> Identification:
    """Recognise the checkpoint at ``path``: which registered model and source layout
    (restricted to ``source``'s converters when given), and which tag, by its hash.
    A file that cannot be read safely is a ``WeightsError``; one that matches nothing
    is returned with ``model=None`` and the closest layouts."""
    notes: list[str] = []
    header = _our_header(path)
    if header is not None and header.get("model"):
        model, tag = header["model"], header.get("tag") or None
        return Identification(str(path), sha256(path), model, OURS, f"{model}.{tag}" if tag else None,
                              (Candidate(model, OURS, 1.0),), notes=("a registry-core weights file (its header says so)",))
    state = read_checkpoint(path)  # refuses a missing, unsafe or malformed file before anything else
    digest = sha256(path)
    found = {key: list(value.shape) for key, value in state.items()}
    candidates = [_compare(found, model, library, expected) for (model, library), expected in _layouts(source)]
    candidates.sort(key=lambda c: (-c.score, _rank(c.source), c.model))
    exact = tuple(c for c in candidates if c.exact)
    described = _described()
    tags = _tags_by_hash(described, digest)
    tag = None
    if tags:
        tag_name, library = tags[0]
        tag = tag_name
        preferred = [c for c in exact if c.model == tag_name.split(".")[0] and c.source == library]
        exact = tuple(preferred) + tuple(c for c in exact if c not in preferred)
        if len(tags) > 1:
            notes.append(f"the hash also matches {', '.join(n for n, _ in tags[1:])}")
    notes += _file_name_notes(described, Path(path).name, digest)
    if exact:
        best = exact[0]
        if len(exact) > 1:
            others = ", ".join(f"{c.source}/{c.model}" for c in exact[1:])
            notes.append(f"the same layout is also {others}'s")
        return Identification(str(path), digest, best.model, best.source, tag, exact, notes=tuple(notes))
    closest = tuple(c for c in candidates[:3] if c.score > 0)
    head_note = _head_note(closest[0], found) if closest else ""
    notes += [head_note] if head_note else []
    return Identification(str(path), digest, None, None, tag, (), closest, tuple(notes))


def _file_name_notes(described: dict[str, dict[str, Any]], name: str, digest: str) -> list[str]:
    """A file named like a registered upstream file whose content is something else."""
    return [f"named like {source['library']}'s file of {tag}, but its sha256 does not start with {source['sha256']}"
            for tag, info in described.items() for source in info["sources"]
            if source["file"] == name and source["sha256"] and not digest.startswith(source["sha256"])]


def _head_note(candidate: Candidate, found: dict[str, list[int]]) -> str:
    """When only one layer's shapes differ in their first dimension (a classifier
    for another class count), say so: a fine-tuned checkpoint of a registered model."""
    expected = dict(_layouts(candidate.source)).get((candidate.model, candidate.source), {})
    differing = [k for k in found if k in expected and found[k] != expected[k]]
    if (len(differing) in (1, 2) and set(found) == set(expected)
            and all(found[k][1:] == expected[k][1:] for k in differing)):
        classes = {found[k][0] for k in differing}
        if len(classes) == 1:
            return (f"{candidate.source}/{candidate.model}'s layout with a {classes.pop()}-class classifier "
                    f"({', '.join(differing)}): a fine-tuned checkpoint")
    return ""


def describe_miss(found: Identification) -> str:
    lines = [f"{found.path} matches no registered layout"]
    for c in found.closest:
        lines.append(f"closest: {c.source}/{c.model} ({c.score:.0%} of keys agree): " + "; ".join(c.differences))
    return "; ".join(lines) if found.closest else lines[0] + " (no converter is registered)"


def _our_header(path: str | os.PathLike) -> dict[str, str] | None:
    if Path(path).suffix != ".safetensors":
        return None
    try:
        return read_metadata(path)
    except RegistryCoreError:
        return None  # read_checkpoint reports what is wrong with it


def _compare(found: dict[str, list[int]], model: str, library: str, expected: dict[str, list[int]]) -> Candidate:
    keys = set(found) | set(expected)
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    shapes = sorted(k for k in set(found) & set(expected) if found[k] != expected[k])
    agree = len(keys) - len(missing) - len(unexpected) - len(shapes)
    differences = []
    if missing:
        differences.append(f"{len(missing)} key(s) missing, e.g. {', '.join(missing[:SHOWN])}")
    if unexpected:
        differences.append(f"{len(unexpected)} unexpected key(s), e.g. {', '.join(unexpected[:SHOWN])}")
    if shapes:
        shown = ", ".join(f"{k} {tuple(found[k])} instead of {tuple(expected[k])}" for k in shapes[:SHOWN])
        differences.append(f"{len(shapes)} shape(s) differ: {shown}")
    return Candidate(model, library, agree / len(keys) if keys else 0.0, tuple(differences))


def _rank(library: str) -> int:
    order = (*CACHE_PREFERENCE, OURS)
    return order.index(library) if library in order else len(order)


def _tags_by_hash(described: dict[str, dict[str, Any]], digest: str) -> list[tuple[str, str]]:
    """``(tag, library)`` of every registered source whose hash the file's starts with,
    the longest (most certain) registered hash first."""
    hits = [(len(source["sha256"]), name, source["library"])
            for name, info in described.items() for source in info["sources"]
            if source["sha256"] and digest.startswith(source["sha256"])]
    return [(name, library) for _, name, library in sorted(hits, key=lambda hit: (-hit[0], hit[1], hit[2]))]


def _layouts(source: str | None) -> list[tuple[tuple[str, str], dict[str, list[int]]]]:
    layouts = _signatures()
    return [((model, library), keys) for (model, library), keys in layouts
            if source is None or library == source]


def _signatures() -> list[tuple[tuple[str, str], dict[str, list[int]]]]:
    """Every registered layout's keys and shapes, from the cache file when current."""
    host = manifest.live_host()
    path = None
    if host is None:
        key = manifest.manifest_key()
        index = manifest.manifest_path(key)
        path = index.with_name(f"{index.stem}-layouts.json")
        try:
            cached = json.loads(path.read_text())
            if cached.get("key") == key:
                return [((m, lib), keys) for m, lib, keys in cached["layouts"]]
        except (OSError, ValueError, AttributeError, TypeError):
            pass
    layouts = _compute_signatures(default_host())  # loads the plugins
    if path is not None:
        try:
            with atomic_write(path, mode="w") as handle:
                json.dump({"key": key, "layouts": [[m, lib, keys] for (m, lib), keys in layouts]}, handle)
        except OSError:
            pass
    return layouts


@functools.cache
def _compute_signatures(host: Any) -> list[tuple[tuple[str, str], dict[str, list[int]]]]:
    """Computed once per host (``host`` keys the cache)."""
    from ..model.compose import meta_device
    from .build import build_model

    registry = host.registry
    layouts = []
    for model in registry.names("model"):
        try:
            with meta_device():
                built = build_model(model)
        except Exception:  # an unbuildable model cannot be recognised; `list` reports it
            continue
        layouts.append(((model, OURS), {k: list(v.shape) for k, v in built.state_dict().items()}))
    for key in registry.names("converter"):
        try:
            converter = registry.get("converter", key).obj
            with meta_device():
                built = build_model(converter.model, **converter.create_kwargs)
            theirs = converter.from_ours(built.state_dict())
        except Exception:  # a converter that cannot map a meta state dict is skipped, not fatal
            continue
        layouts.append(((converter.model, converter.source), {k: list(v.shape) for k, v in theirs.items()}))
    return layouts

