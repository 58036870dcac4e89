"""What is this checkpoint? Recognising a file by its key/shape signature and its hash.

A checkpoint is unwrapped (``weights/unwrap.py``: training containers, wrapper
prefixes) and compared with every registered layout (``layouts.py``): ours, and each
converter's, a third party's included. The one whose keys all agree, and whose shapes
agree up to the class count and input channels, names the model, the source and those
sizes. Its sha256 is compared with the hashes weight tags register, which names the
tag. Nothing here converts: ``conversion`` asks this module, never the other way.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..arguments import check_name
from ..errors import RegistryCoreError, UnknownNameError, WeightsError
from ..weights.checkpoints import read_foreign, sha256
from ..weights.safetensors_io import read_metadata
from ..weights.unwrap import EMA_ENTRIES, ForeignCheckpoint
from .catalog import list_converters
from .layouts import OURS, Fit, layouts
from .library_caches import CACHE_PREFERENCE
from .tag_catalog import described_tags


@dataclass(frozen=True)
class Candidate:
    """One registered layout compared with the checkpoint. ``sizes`` are the class count
    and input channels its shapes give, where the layout has them."""

    model: str
    source: str  # a converter's library, or "registry-core" for our own layout
    score: float  # the share of keys that agree (shapes included), over the union of keys
    differences: tuple[str, ...] = ()
    sizes: Mapping[str, int] = field(default_factory=dict)
    changed: Mapping[str, int] = field(default_factory=dict)  # the sizes that differ from the model's defaults

    @property
    def exact(self) -> bool:
        return not self.differences

    @classmethod
    def of(cls, fit: Fit) -> Candidate:
        return cls(fit.layout.model, fit.layout.source, fit.score, fit.differences, dict(fit.sizes), fit.sizes_changed())


@dataclass(frozen=True)
class Identification:
    """What ``identify_checkpoint`` found. ``model``/``source`` are set when a layout
    matches (the first of ``matches`` in cache-preference order), ``tag`` when the
    file's hash is a registered tag's; ``closest`` lists the nearest layouts otherwise.
    ``num_classes``/``in_chans`` are the file's sizes, ``options`` those that differ
    from the model's defaults (what ``create`` or ``convert`` must be given).
    ``unwrapped`` says how the weights were found in the file, ``others`` names its
    other sets of weights (an EMA copy), and ``weights`` holds them."""

    path: str
    sha256: str
    model: str | None = None
    source: str | None = None
    tag: str | None = None
    matches: tuple[Candidate, ...] = ()
    closest: tuple[Candidate, ...] = ()
    notes: tuple[str, ...] = ()
    num_classes: int | None = None
    in_chans: int | None = None
    options: Mapping[str, int] = field(default_factory=dict)
    unwrapped: str = ""
    others: tuple[str, ...] = ()
    ema: bool = False
    weights: ForeignCheckpoint | None = field(default=None, repr=False, compare=False)

    def require(self) -> Identification:
        """This identification, or a ``WeightsError`` saying what the closest layouts differ in."""
        if self.model is None:
            raise WeightsError(describe_miss(self))
        return self

    def convert_command(self) -> str:
        """The ``registry-core convert`` command that converts this file ("" when it is
        not recognised, or is already ours)."""
        if self.model is None or self.source in (None, OURS):
            return ""
        words = ["registry-core", "convert", "--from", self.source, "--model", self.model]
        if self.tag:
            words += ["--tag", self.tag.split(".", 1)[1]]
        if self.ema:
            words.append("--ema")
        words += ["--checkpoint", self.path, "--out", suggested_out(self.path)]
        return " ".join(shlex.quote(str(w)) for w in words)

    def as_dict(self) -> dict[str, Any]:
        def candidate(c: Candidate) -> dict[str, Any]:
            return {"model": c.model, "source": c.source, "score": round(c.score, 4), "differences": list(c.differences),
                    "sizes": dict(c.sizes)}

        return {"path": self.path, "sha256": self.sha256, "model": self.model, "source": self.source, "tag": self.tag,
                "num_classes": self.num_classes, "in_chans": self.in_chans, "options": dict(self.options),
                "unwrapped": self.unwrapped, "others": list(self.others), "ema": self.ema,
                "matches": [candidate(c) for c in self.matches], "closest": [candidate(c) for c in self.closest],
                "notes": list(self.notes), "convert": self.convert_command()}


def identify_checkpoint(path: str | os.PathLike, *, source: str | None = None, ema: bool = False) -> Identification:
    """Recognise the checkpoint at ``path``: which registered model and source layout
    (restricted to ``source``'s converters when given), its class count and input
    channels, and which tag, by its hash. ``ema=True`` looks at the file's EMA weights.
    A file that cannot be read safely is a ``WeightsError``; one that matches nothing
    is returned with ``model=None`` and the closest layouts."""
    if source is not None:
        sources = sorted({key.split("/")[0] for key in list_converters()})
        if source not in sources:
            raise UnknownNameError(check_name(source, "source"), sources, f"sources with converters: {', '.join(sources)}")
    header = _our_header(path)
    if header is not None and header.get("model"):
        model, tag = header["model"], header.get("tag") or None
        return Identification(str(path), sha256(path), model, OURS, f"{model}.{tag}" if tag else None,
                              (Candidate(model, OURS, 1.0),), notes=("a registry-core weights file (its header says so)",))
    weights = read_foreign(path, ema=ema)  # refuses a missing, unsafe or malformed file before anything else
    return identify_weights(weights, sha256(path), source=source, ema=ema)


def identify_weights(weights: ForeignCheckpoint, digest: str, *, source: str | None = None, model: str | None = None,
                     ema: bool = False) -> Identification:
    """``identify_checkpoint`` for weights already read (``digest`` is the file's sha256),
    among the layouts of ``source`` and ``model`` when given."""
    candidates, chosen = _compare(weights, source, model)
    exact = tuple(c for c in candidates if c.exact)
    notes: list[str] = []
    described = described_tags()
    tags = _tags_by_hash(described, digest)
    tag = None
    if tags:
        tag, library = tags[0]
        preferred = [c for c in exact if c.model == tag.split(".")[0] and c.source == library]
        exact = tuple(preferred) + tuple(c for c in exact if c not in preferred)
        if len(tags) > 1:
            notes.append(f"the hash also matches {', '.join(n for n, _ in tags[1:])}")
    notes += _file_name_notes(described, Path(weights.path).name, digest)
    if weights.others:
        notes.append(f"it also holds {', '.join(repr(o) for o in weights.others)}"
                     + ("" if ema else "; --ema (ema=True) takes its EMA weights" if _has_ema(weights.others) else ""))
    found = Identification(weights.path, digest, tag=tag, unwrapped=chosen.unwrapped, others=weights.others, ema=ema,
                           weights=chosen)
    if not exact:
        closest = tuple(c for c in candidates[:3] if c.score > 0)
        return replace(found, closest=closest, notes=tuple(notes))
    best = exact[0]
    if len(exact) > 1:
        notes.append(f"the same layout is also {', '.join(f'{c.source}/{c.model}' for c in exact[1:])}'s")
    notes += _size_notes(best)
    return replace(found, model=best.model, source=best.source, matches=exact, notes=tuple(notes),
                   num_classes=best.sizes.get("num_classes"), in_chans=best.sizes.get("in_chans"), options=dict(best.changed))


def _compare(weights: ForeignCheckpoint, source: str | None, model: str | None) -> tuple[list[Candidate], ForeignCheckpoint]:
    """The checkpoint against every layout, best first; with a holder prefix removed,
    the weights with it kept are tried too when nothing matched without it."""
    known = layouts(source=source, model=model)
    first: list[Candidate] = []
    for variant in (weights, weights.keeping_holder_prefix()):
        if variant is None:
            continue
        found = {key: tuple(value.shape) for key, value in variant.state.items()}
        candidates = sorted((Candidate.of(layout.fit(found)) for layout in known),
                            key=lambda c: (-c.score, _rank(c.source), c.model))
        if any(c.exact for c in candidates):
            return candidates, variant
        first = first or candidates
    return first, weights


def _size_notes(best: Candidate) -> list[str]:
    sizes = best.changed
    parts = [f"a {sizes['num_classes']}-class classifier"] if "num_classes" in sizes else []
    if "in_chans" in sizes:
        parts.append(f"{sizes['in_chans']} input channel{'s' if sizes['in_chans'] != 1 else ''}")
    return [f"{' and '.join(parts)} (fine-tuned): converting sizes the model from the file"] if parts else []


def _has_ema(others: tuple[str, ...]) -> bool:
    return any(o in EMA_ENTRIES for o in others)


def suggested_out(path: str) -> str:
    """Where ``convert`` could write ``path``'s conversion: beside it, named after it."""
    source = Path(path)
    stem = source.name.split(".")[0] or "converted"
    out = source.with_name(f"{stem}.safetensors")
    return str(out if out.name != source.name else source.with_name(f"{stem}-registry-core.safetensors"))


def _file_name_notes(described: dict[str, dict[str, Any]], name: str, digest: str) -> list[str]:
    """A file named like a registered upstream file whose content is something else."""
    return [f"named like {source['library']}'s file of {tag}, but its sha256 does not start with {source['sha256']}"
            for tag, info in described.items() for source in info["sources"]
            if source["file"] == name and source["sha256"] and not digest.startswith(source["sha256"])]


def describe_miss(found: Identification) -> str:
    lines = [f"{found.path} matches no registered layout"]
    for c in found.closest:
        lines.append(f"closest: {c.source}/{c.model} ({c.score:.0%} of keys agree): " + "; ".join(c.differences))
    return "; ".join(lines) if found.closest else lines[0] + " (no registered layout shares a key and shape with it)"


def _our_header(path: str | os.PathLike) -> dict[str, str] | None:
    if Path(path).suffix != ".safetensors":
        return None
    try:
        return read_metadata(path)
    except RegistryCoreError:
        return None  # read_foreign reports what is wrong with it


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
