"""Names -> components, each stamped with the plugin that gave it.

The registry holds seven kinds of entry (stems, blocks, heads, models, converters,
weight tags, datasets), described once in ``KINDS``: the hook that contributes each and the base
class its entries must subclass. A name belongs to one plugin: when two register it
without ``override``, neither gets it (asking for it is a ``DuplicateNameError`` naming
both and the ways out) and both keep everything else, whatever order they load in.
Entries from one plugin are added all together or not at all (``add_all``), so a
plugin that fails half-way leaves nothing behind.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import BrokenPluginError, DuplicateNameError, PluginError, UnknownComponentError, UnknownModelError
from ..model.interfaces import Block, Head, Stem
from ..weights.keymaps import Converter
from ..weights.tags import WeightTag


@dataclass(frozen=True)
class Kind:
    """One kind of registry entry: its name, the hook that contributes it, for
    components the base class an entry must subclass, and for records that carry their
    own name (converters, weight tags) the record type and its naming attribute."""

    name: str
    hook: str
    base: type | None = None
    record: type | None = None
    named_by: str = ""


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("stem", "register_stems", Stem),
        Kind("block", "register_blocks", Block),
        Kind("head", "register_heads", Head),
        Kind("model", "register_models"),
        Kind("converter", "register_converters", record=Converter, named_by="key"),
        Kind("weights", "register_weights", record=WeightTag, named_by="name"),
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


@dataclass(frozen=True)
class Contest:
    """A name that several plugins registered without ``override``: who claims it, and
    which one a user's preference picked (``None`` while it is unsettled)."""

    kind: str
    name: str
    claimants: tuple[Provenance, ...]
    chosen: Provenance | None = None

    def __str__(self) -> str:
        who = " and ".join(str(p) for p in self.claimants)
        if self.chosen is None:
            return f"{self.kind} {self.name!r}: claimed by {who}; unsettled"
        return f"{self.kind} {self.name!r}: claimed by {who}; settled for {self.chosen.distribution or self.chosen.plugin}"


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-")


@dataclass
class Registry:
    """All entries by kind and name, plus what broken plugins would have provided and
    which entries of working plugins broke.

    Every registration of a name is kept as a claim, and the entry under the name is
    decided from the set of claims alone, so the order plugins load in never matters:
    one claim wins; an ``override=True`` claim beats plain ones; otherwise the name is
    contested and given to nobody, unless ``preferences`` (``name`` or ``kind:name`` ->
    distribution or plugin name) pick a claimant.
    """

    preferences: dict[str, str] = field(default_factory=dict)
    entries: dict[str, dict[str, Entry]] = field(default_factory=lambda: {kind: {} for kind in KINDS})
    claims: dict[tuple[str, str], list[Entry]] = field(default_factory=dict)
    contests: dict[tuple[str, str], Contest] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)
    broken_kinds: dict[str, frozenset[str] | None] = field(default_factory=dict)
    broken_names: dict[tuple[str, str], str] = field(default_factory=dict)
    broken_entries: dict[tuple[str, str], str] = field(default_factory=dict)

    def add_all(self, new: Iterable[Entry]) -> list[Entry]:
        """Add one plugin's entries atomically (a name twice in one plugin is an error);
        returns the entries it now holds."""
        staged: dict[tuple[str, str], Entry] = {}
        for entry in new:
            key = (entry.kind, entry.name)
            if key in staged:
                raise DuplicateNameError(f"{entry.kind} {entry.name!r} registered twice by {entry.provenance}")
            staged[key] = entry
        for key, entry in staged.items():
            self.claims.setdefault(key, []).append(entry)
            self._decide(key)
        return [self.entries[k][n] for k, n in staged if self.entries[k].get(n) is not None
                and self.entries[k][n].provenance == staged[(k, n)].provenance]

    def _decide(self, key: tuple[str, str]) -> None:
        kind, name = key
        claims = self.claims[key]
        overriding = [c for c in claims if c.wants_override]
        pool = overriding or claims
        chosen = self._preferred(key, pool) if len(pool) > 1 else pool[0]
        self.contests.pop(key, None)
        if len(pool) > 1:
            claimants = tuple(sorted((c.provenance for c in pool), key=lambda p: (p.distribution, p.plugin)))
            self.contests[key] = Contest(kind, name, claimants,
                                         chosen.provenance if chosen else None)
        if chosen is None:
            self.entries[kind].pop(name, None)
            return
        replaced = next((c.provenance for c in claims if not c.wants_override), None) if chosen.wants_override else None
        self.entries[kind][name] = Entry(kind, name, chosen.obj, chosen.provenance, chosen.wants_override, replaced)

    def _preferred(self, key: tuple[str, str], pool: list[Entry]) -> Entry | None:
        wanted = self.preferences.get(f"{key[0]}:{key[1]}", self.preferences.get(key[1]))
        if wanted is None:
            return None
        match = [c for c in pool if _normalise(wanted) in {_normalise(c.provenance.distribution), _normalise(c.provenance.plugin)}]
        return match[0] if len(match) == 1 else None

    def mark_broken(self, plugin: str, cause: str, would_provide: Iterable[tuple[str, str]] = (),
                    kinds: Iterable[str] | None = None) -> None:
        """A plugin that provides nothing: ``would_provide`` are the names it staged
        before failing; ``kinds`` the kinds of entry it may have provided besides
        (its hooks'), or ``None`` when that is unknown (it failed to import)."""
        self.broken[plugin] = cause
        self.broken_kinds[plugin] = None if kinds is None else frozenset(kinds)
        for key in would_provide:
            self.broken_names[key] = plugin

    def mark_entry_broken(self, kind: str, name: str, cause: str) -> None:
        """One entry of an otherwise working plugin failed (a model builder raised):
        it leaves the registry, and asking for it names the plugin and the cause.
        Asking for any other name never blames it."""
        entry = self.entries[kind].pop(name)
        self.broken_entries[(kind, name)] = f"{cause}; the rest of its plugin, {entry.provenance}, works"

    def get(self, kind: str, name: str) -> Entry:
        entry = self.entries[kind].get(name)
        if entry is not None:
            return self._resolved(entry)
        contest = self.contests.get((kind, name))
        if contest is not None:
            dists = [p.distribution or p.plugin for p in contest.claimants]
            raise DuplicateNameError(
                f"{kind} {name!r} is registered by both {' and '.join(map(str, contest.claimants))}, so neither has it; "
                f"choose one with REGISTRY_CORE_PREFER='{name}={dists[0]}' (or a line '{name}={dists[0]}' in "
                f"$REGISTRY_CORE_HOME/prefer.txt), or uninstall one of {', '.join(dists)}"
            )
        if (kind, name) in self.broken_entries:
            raise BrokenPluginError(name, (), self.broken_entries[(kind, name)])
        plugin = self.broken_names.get((kind, name))
        if plugin is not None:
            raise BrokenPluginError(
                name, (), f"it is provided by plugin {plugin!r}, which is broken: {self.broken[plugin]}"
            )
        suspects = sorted(p for p, kinds in self.broken_kinds.items() if kinds is None or kind in kinds)
        hint = "broken plugins that may have provided it: " + ", ".join(suspects) if suspects else ""
        known = self.entries[kind].keys()
        if kind == "model":
            raise UnknownModelError(name, known, hint)
        raise UnknownComponentError(kind, name, known, hint)

    def _resolved(self, entry: Entry) -> Entry:
        """A component registered as a function returning its class (so it can build on
        another plugin's registered class) is resolved on first use, once."""
        base = KINDS[entry.kind].base
        if base is None or isinstance(entry.obj, type):
            return entry
        try:
            cls = entry.obj()
        except Exception as exc:  # the plugin's bug: the entry breaks, nothing else
            cause = f"{entry.kind} {entry.name!r}: building its class raised {type(exc).__name__}: {exc}"
            self.mark_entry_broken(entry.kind, entry.name, cause)
            raise BrokenPluginError(entry.name, (), f"it is provided by {entry.provenance}: {cause}") from None
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginError(f"{entry.kind} {entry.name!r} from {entry.provenance}: its function returned {cls!r}, "
                              f"not a subclass of registry_core.{base.__name__}")
        resolved = replace(entry, obj=cls)
        self.entries[entry.kind][entry.name] = resolved
        return resolved

    def names(self, kind: str, pattern: str = "*") -> list[str]:
        return sorted(n for n in self.entries[kind] if fnmatch.fnmatchcase(n, pattern))
