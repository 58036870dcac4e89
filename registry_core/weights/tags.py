"""Weight tags: one registered set of weights for one architecture, as plain data.

A tag is named ``model.tag`` (timm's grammar: ``resnet50.tv2_in1k``). It carries what
belongs to those weights rather than to the architecture: the preprocessing they were
evaluated with, the label set, the reported metrics and license, and where the upstream
files come from (``WeightSource``: torchvision's enum member and file, timm's tag, hub
id and file). Plugins register tags through ``register_weights``; the core converts a
source's cached file with the registered converter for ``source.library/model``. No
torch here: the catalogue lists tags without importing it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import SpecError
from ..model.data_config import DataConfig

TAG_PATTERN = re.compile(r"[a-z0-9][a-z0-9_]*")
HEX = re.compile(r"[0-9a-f]{8,64}")
HUB_FILE_HASH = re.compile(r"-([0-9a-f]{8,64})\.")  # torch.hub's convention: name-<sha256 prefix>.ext
LABEL_SETS = ("imagenet-1k",)


@dataclass(frozen=True)
class WeightSource:
    """Where one library publishes a tag's weights.

    ``model`` is the library's architecture name and ``member`` torchvision's weights
    enum member (``IMAGENET1K_V2``) or timm's pretrained tag (``a1_in1k``). ``hub_id``
    is timm's Hugging Face repository, ``file`` the upstream file name (the one
    torch.hub caches). ``sha256`` is the file's hash or a prefix of it (at least eight
    hex digits); when empty, the prefix torch.hub file names carry is used. ``data``
    replaces the tag's data config for a file from this source, where the library's
    model expects other input (timm's Inception v3 has no ``transform_input``).
    """

    library: str
    model: str
    member: str = ""
    file: str = ""
    hub_id: str = ""
    sha256: str = ""
    data: DataConfig | None = None

    @property
    def hash_prefix(self) -> str:
        """What this source's file hash must start with ("" when unknown)."""
        if self.sha256:
            return self.sha256
        found = HUB_FILE_HASH.search(self.file)
        return found.group(1) if found else ""

    def describe(self) -> str:
        ident = f"{self.model}.{self.member}" if self.library == "timm" else f"{self.model} {self.member}".strip()
        return f"{self.library} {ident}"


@dataclass(frozen=True)
class WeightTag:
    """One set of weights for ``model``, named ``model.tag``.

    ``labels`` is a label set the core resolves when it converts the weights
    (``"imagenet-1k"``: the 1,000 ImageNet names, read from torchvision's metadata) or
    the class names themselves. ``metrics`` are the source library's reported numbers
    (``{"top1": 80.858, "top5": 95.434}``); ``create_kwargs`` are create options the
    weights need; ``default`` marks the tag ``create(model, pretrained=True)`` uses.
    """

    model: str
    tag: str
    data: DataConfig
    sources: tuple[WeightSource, ...]
    labels: str | tuple[str, ...] | None = None
    num_classes: int = 1000
    metrics: Mapping[str, float] = field(default_factory=dict)
    license: str = ""
    description: str = ""
    create_kwargs: Mapping[str, Any] = field(default_factory=dict)
    default: bool = False

    def __post_init__(self):
        problems = []
        if not isinstance(self.model, str) or not self.model or "." in self.model:
            problems.append(f"model must be a registered model name without '.', got {self.model!r}")
        if not isinstance(self.tag, str) or not TAG_PATTERN.fullmatch(self.tag):
            problems.append(f"tag must be lower-case letters, digits and '_', got {self.tag!r}")
        if not isinstance(self.data, DataConfig):
            problems.append("data must be a registry_core.DataConfig")
        object.__setattr__(self, "sources", tuple(self.sources))
        for source in self.sources:
            if not isinstance(source, WeightSource):
                problems.append(f"sources must be WeightSource records, got {source!r}")
            elif source.sha256 and not HEX.fullmatch(source.sha256):
                problems.append(f"{source.describe()}: sha256 must be 8 to 64 lower-case hex digits, got {source.sha256!r}")
        if isinstance(self.labels, str) and self.labels not in LABEL_SETS:
            problems.append(f"labels must be one of {', '.join(LABEL_SETS)} or a tuple of class names, got {self.labels!r}")
        elif isinstance(self.labels, tuple) and len(self.labels) != self.num_classes:
            problems.append(f"{len(self.labels)} class names for {self.num_classes} classes")
        if problems:
            raise SpecError(f"weight tag {self.model}.{self.tag}: " + "; ".join(problems))

    @property
    def name(self) -> str:
        return f"{self.model}.{self.tag}"

    def source(self, library: str) -> WeightSource | None:
        return next((s for s in self.sources if s.library == library), None)

    def data_for(self, source: WeightSource | None) -> DataConfig:
        """The preprocessing of a file converted from ``source``."""
        return source.data if source is not None and source.data is not None else self.data

    def describe(self) -> dict[str, Any]:
        """The tag as JSON-ready data (what the manifest and ``registry-core weights`` show)."""
        return {
            "name": self.name, "model": self.model, "tag": self.tag, "default": self.default,
            "data_config": self.data.to_dict(), "labels": self.labels if isinstance(self.labels, str) or self.labels is None
            else list(self.labels), "num_classes": self.num_classes, "metrics": dict(self.metrics),
            "license": self.license, "description": self.description, "create_kwargs": dict(self.create_kwargs),
            "sources": [{"library": s.library, "model": s.model, "member": s.member, "file": s.file, "hub_id": s.hub_id,
                         "sha256": s.hash_prefix, "data_config": None if s.data is None else s.data.to_dict()}
                        for s in self.sources],
        }


def split_name(name: str) -> tuple[str, str]:
    """``"resnet50.tv2_in1k"`` -> ``("resnet50", "tv2_in1k")``; no dot: an empty tag."""
    model, _, tag = name.partition(".")
    return model, tag


def torchvision_tag(model: str, tag: str, member: str, file: str, *, data: DataConfig, top1: float | None = None,
                    top5: float | None = None, timm_file: str | None = None, timm_data: DataConfig | None = None,
                    labels: str | tuple[str, ...] | None = "imagenet-1k", **fields: Any) -> WeightTag:
    """A tag whose weights torchvision publishes as enum member ``member`` in ``file``.

    ``timm_file`` (the file name of timm's release) adds timm's copy, ``model.tag`` on
    the hub as ``timm/model.tag``; ``timm_data`` when timm's model wants other input.
    """
    sources = [WeightSource("torchvision", model, member, file)]
    if timm_file is not None:
        sources.append(WeightSource("timm", model, tag, timm_file, hub_id=f"timm/{model}.{tag}", data=timm_data))
    metrics = {k: v for k, v in (("top1", top1), ("top5", top5)) if v is not None}
    return WeightTag(model, tag, data, tuple(sources), labels=labels, metrics=metrics,
                     **{"license": "bsd-3-clause", **fields})


def timm_tag(model: str, tag: str, *, data: DataConfig, file: str = "", license: str = "apache-2.0",
             labels: str | tuple[str, ...] | None = "imagenet-1k", timm_model: str | None = None,
             **fields: Any) -> WeightTag:
    """A tag timm publishes as ``model.tag`` (hub ``timm/model.tag``; ``file`` is its
    release file name, where it has one). ``timm_model`` is timm's name for the
    architecture where it differs from ours (``vit_base_patch16_224`` for ``vit_b_16``)."""
    theirs = timm_model or model
    source = WeightSource("timm", theirs, tag, file, hub_id=f"timm/{theirs}.{tag}")
    return WeightTag(model, tag, data, (source,), labels=labels, license=license, **fields)
