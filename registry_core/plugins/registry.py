"""Names -> components, each stamped with the plugin that gave it.

The registry holds six kinds of entry (stems, blocks, heads, models, converters,
datasets), described once in ``KINDS``: the hook that contributes each and the base
class its entries must subclass. A name belongs to one plugin: a second registration is a
``DuplicateNameError`` naming both, unless the newcomer asks to override. Entries from
one plugin are added all together or not at all (``add_all``), so a plugin that fails
half-way leaves nothing behind.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import BrokenPluginError, DuplicateNameError, UnknownComponentError, UnknownModelError
from ..model.interfaces import Block, Head, Stem


@dataclass(frozen=True)
class Kind:
    """One kind of registry entry: its name, the hook that contributes it and, for
    components, the base class an entry must subclass."""

    name: str
    hook: str
    base: type | None = None


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("stem", "register_stems", Stem),
        Kind("block", "register_blocks", Block),
        Kind("head", "register_heads", Head),
        Kind("model", "register_models"),
        Kind("converter", "register_converters"),
        Kind("dataset", "register_datasets"),
    )
}
KIND_OF_HOOK: dict[str, str] = {kind.hook: kind.name for kind in KINDS.values()}


@dataclass(frozen=True)
class Provenance:
    """Which plugin gave an entry: its name, distribution, version and entry point."""

    plugin: str
    distribution: str = ""
    version: str = ""
    entry_point: str = ""

    def __str__(self) -> str:
        dist = f" ({self.distribution} {self.version})" if self.distribution else ""
        return f"{self.plugin}{dist}"


@dataclass(frozen=True)
class Entry:
    """A registered object. ``wants_override`` is what the plugin asked for
    (``register(..., override=True)``); ``replaces`` is whose entry it replaced."""

    kind: str
    name: str
    obj: Any
    provenance: Provenance
    wants_override: bool = False
    replaces: Provenance | None = None


@dataclass
class Registry:
    """All entries by kind and name, plus what broken plugins would have provided."""

    entries: dict[str, dict[str, Entry]] = field(default_factory=lambda: {kind: {} for kind in KINDS})
    broken: dict[str, str] = field(default_factory=dict)
    broken_names: dict[tuple[str, str], str] = field(default_factory=dict)

    def add_all(self, new: Iterable[Entry]) -> list[Entry]:
        """Add one plugin's entries atomically; returns them as stored."""
        staged: dict[tuple[str, str], Entry | None] = {}
        for entry in new:
            key = (entry.kind, entry.name)
            if key in staged:
                raise DuplicateNameError(f"{entry.kind} {entry.name!r} registered twice by {entry.provenance}")
            staged[key] = self._resolve(entry)
        stored = {key: e for key, e in staged.items() if e is not None}
        for (kind, name), kept in stored.items():
            self.entries[kind][name] = kept
        return list(stored.values())

    def _resolve(self, entry: Entry) -> Entry | None:
        existing = self.entries[entry.kind].get(entry.name)
        if existing is None:
            return entry
        if entry.wants_override and not existing.wants_override:
            return Entry(entry.kind, entry.name, entry.obj, entry.provenance, True, existing.provenance)
        if existing.wants_override and not entry.wants_override and existing.replaces is None:
            # The override arrived first; remember whom it overrides, keep it.
            self.entries[entry.kind][entry.name] = Entry(
                existing.kind, existing.name, existing.obj, existing.provenance, True, entry.provenance
            )
            return None
        raise DuplicateNameError(
            f"{entry.kind} {entry.name!r} is registered by both {existing.provenance} and "
            f"{entry.provenance}; pass override=True in one of them to replace the other"
        )

    def mark_broken(self, plugin: str, cause: str, would_provide: Iterable[tuple[str, str]] = ()) -> None:
        self.broken[plugin] = cause
        for key in would_provide:
            self.broken_names[key] = plugin

    def get(self, kind: str, name: str) -> Entry:
        try:
            return self.entries[kind][name]
        except KeyError:
            pass
        plugin = self.broken_names.get((kind, name))
        if plugin is not None:
            raise BrokenPluginError(
                name, (), f"it is provided by plugin {plugin!r}, which is broken: {self.broken[plugin]}"
            )
        hint = ""
        if self.broken:
            hint = "broken plugins that may have provided it: " + ", ".join(sorted(self.broken))
        known = self.entries[kind].keys()
        if kind == "model":
            raise UnknownModelError(name, known, hint)
        raise UnknownComponentError(kind, name, known, hint)

    def names(self, kind: str, pattern: str = "*") -> list[str]:
        return sorted(n for n in self.entries[kind] if fnmatch.fnmatchcase(n, pattern))
