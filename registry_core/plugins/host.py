"""Finding and loading plugins: entry-point group ``registry_core``, lazily, once.

Each plugin's hooks are called on their own, with a ``register`` callback bound to that
plugin, so every entry carries its provenance and one broken plugin (import error,
exception in a hook, misspelled hook, clashing name) is reported and skipped while the
rest of the registry keeps working.

Environment:
  ``REGISTRY_CORE_PLUGINS``  comma-separated plugin or distribution names to load
                            (unset or empty: all); the core's own plugin always loads.
  ``REGISTRY_CORE_TRACE``    set to 1 to trace plugin loading and hook calls on stderr.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
import sys
import threading
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import pluggy

from .._version import __version__
from ..errors import PluginError, PluginWarning
from ..model.spec import ModelSpec
from ..weights.keymaps import Converter
from . import core_plugin, hookspecs
from .registry import KIND_OF_HOOK, KINDS, Entry, Provenance, Registry

GROUP = "registry_core"
ENV_PLUGINS = "REGISTRY_CORE_PLUGINS"
ENV_TRACE = "REGISTRY_CORE_TRACE"


@dataclass
class PluginRecord:
    """What ``registry-core plugins`` shows for one plugin; ``list_plugins()`` returns these."""

    name: str
    distribution: str
    version: str
    entry_point: str
    status: str = "ok"  # ok | broken | disabled
    error: str = ""
    hooks: list[str] = field(default_factory=list)
    provided: dict[str, list[str]] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __getitem__(self, key: str) -> Any:
        """Deprecated: ``list_plugins()`` returned dicts before 0.2; use attributes."""
        warnings.warn("list_plugins() returns PluginRecord objects: use record.name, not record['name']",
                      DeprecationWarning, stacklevel=2)
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-")


class PluginHost:
    """A pluggy plugin manager plus the registry it fills. Tests make their own."""

    def __init__(self, *, only: str | None = None, trace: bool | None = None):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.records: dict[str, PluginRecord] = {}
        only = os.environ.get(ENV_PLUGINS, "") if only is None else only
        self.only = {_normalise(n.strip()) for n in only.split(",") if n.strip()}
        self.trace = os.environ.get(ENV_TRACE, "") not in ("", "0") if trace is None else trace
        if self.trace:
            self.pm.trace.root.setwriter(sys.stderr.write)
            self.pm.enable_tracing()
        self.add_plugin(core_plugin, Provenance("registry-core", "registry-core", __version__, core_plugin.__name__))

    def _say(self, message: str) -> None:
        if self.trace:
            sys.stderr.write(f"registry-core: {message}\n")

    def load_entry_points(self, group: str = GROUP) -> None:
        """Import and register every plugin advertised in ``group``, sorted by name."""
        importlib.invalidate_caches()
        points = importlib.metadata.entry_points(group=group)
        for ep in sorted(points, key=lambda ep: (ep.dist.name if ep.dist else "", ep.name)):
            dist = ep.dist
            prov = Provenance(ep.name, dist.name if dist else "", dist.version if dist else "", ep.value)
            if ep.name in self.records:
                continue
            if self.only and not {_normalise(ep.name), _normalise(prov.distribution)} & self.only:
                self.records[ep.name] = self._record(prov, status="disabled", error=f"not in {ENV_PLUGINS}")
                continue
            self._say(f"loading plugin {ep.name!r} from {ep.value} ({prov.distribution} {prov.version})")
            try:
                plugin = ep.load()
            except Exception as exc:  # any import failure must not take the registry down
                self._broken(prov, f"failed to import {ep.value}: {type(exc).__name__}: {exc}")
                continue
            self.add_plugin(plugin, prov)

    def add_plugin(self, plugin: object, provenance: Provenance | str) -> PluginRecord:
        """Register ``plugin`` (a module or object with hook implementations) and run
        its hooks. Returns its record, which says whether it loaded or is broken."""
        prov = Provenance(provenance) if isinstance(provenance, str) else provenance
        hooks = sorted(n for n in dir(plugin) if self.pm.parse_hookimpl_opts(plugin, n) is not None)
        unknown = [n for n in hooks if n not in KIND_OF_HOOK]
        if unknown:
            hints = [difflib.get_close_matches(n, KIND_OF_HOOK, n=1) for n in unknown]
            said = ", ".join(f"{n!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for n, h in zip(unknown, hints))
            return self._broken(prov, f"implements unknown hook {said}", hooks=hooks)
        try:
            self.pm.register(plugin, name=prov.plugin)
        except Exception as exc:  # pluggy's validation errors and name clashes
            return self._broken(prov, f"cannot be registered: {type(exc).__name__}: {exc}", hooks=hooks)
        staged: list[Entry] = []
        others = [p for p in self.pm.get_plugins() if p is not plugin]
        for hook_name in hooks:
            caller = self.pm.subset_hook_caller(hook_name, remove_plugins=others)
            try:
                caller(register=_Registrar(KIND_OF_HOOK[hook_name], prov, staged))
            except Exception as exc:
                self.pm.unregister(plugin)
                cause = f"raised in {hook_name}: {type(exc).__name__}: {exc}"
                return self._broken(prov, cause, hooks=hooks, staged=staged)
        try:
            stored = self.registry.add_all(staged)
        except Exception as exc:
            self.pm.unregister(plugin)
            return self._broken(prov, f"{type(exc).__name__}: {exc}", hooks=hooks, staged=staged)
        record = self._record(prov, hooks=hooks)
        for entry in stored:
            record.provided.setdefault(entry.kind, []).append(entry.name)
            if entry.replaces is not None:
                record.overrides.append(f"{entry.kind} {entry.name} (from {entry.replaces})")
        self._note_late_overrides(prov)
        self.records[prov.plugin] = record
        self._say(f"plugin {prov.plugin!r} provided " + _summary(record.provided))
        return record

    def _note_late_overrides(self, prov: Provenance) -> None:
        """An override that loaded before the entry it replaces learns about it here."""
        for kind_entries in self.registry.entries.values():
            for entry in kind_entries.values():
                record = self.records.get(entry.provenance.plugin)
                if entry.replaces == prov and record is not None:
                    note = f"{entry.kind} {entry.name} (from {prov})"
                    if note not in record.overrides:
                        record.overrides.append(note)

    def _record(self, prov: Provenance, **fields: Any) -> PluginRecord:
        return PluginRecord(prov.plugin, prov.distribution, prov.version, prov.entry_point, **fields)

    def _broken(self, prov: Provenance, cause: str, hooks=(), staged=()) -> PluginRecord:
        record = self._record(prov, status="broken", error=cause, hooks=list(hooks))
        self.records[prov.plugin] = record
        existing = {(e.kind, e.name) for e in staged if e.name in self.registry.entries[e.kind]}
        self.registry.mark_broken(prov.plugin, cause, [(e.kind, e.name) for e in staged if (e.kind, e.name) not in existing])
        warnings.warn(PluginWarning(f"registry-core plugin {prov} is broken: {cause}"), stacklevel=3)
        return record


def _summary(provided: dict[str, list[str]]) -> str:
    return ", ".join(f"{len(names)} {kind}(s)" for kind, names in provided.items()) or "nothing"


class _Registrar:
    """The ``register`` callback a hook receives, bound to one plugin and one kind."""

    def __init__(self, kind: str, provenance: Provenance, staged: list[Entry]):
        self.kind, self.provenance, self.staged = kind, provenance, staged

    def __call__(self, *args: Any, override: bool = False) -> None:
        if self.kind == "converter":
            if len(args) != 1 or not isinstance(args[0], Converter):
                raise PluginError("register_converters: call register(converter) with a registry_core.Converter")
            name, obj = args[0].key, args[0]
        else:
            if len(args) != 2:
                raise PluginError(f"register_{self.kind}s: call register(name, {self.kind})")
            name, obj = args
        if not isinstance(name, str) or not name:
            raise PluginError(f"{self.kind} names must be non-empty strings, got {name!r}")
        _check(self.kind, name, obj)
        self.staged.append(Entry(self.kind, name, obj, self.provenance, override))


def _check(kind: str, name: str, obj: Any) -> None:
    base = KINDS[kind].base
    if base is not None and not (isinstance(obj, type) and issubclass(obj, base)):
        raise PluginError(f"{kind} {name!r} must be a subclass of registry_core.{base.__name__}, got {obj!r}")
    if kind == "model" and not (isinstance(obj, ModelSpec) or callable(obj)):
        raise PluginError(f"model {name!r} must be a ModelSpec or a function returning one")
    if kind == "dataset" and not callable(getattr(obj, "load", None)):
        raise PluginError(f"dataset {name!r} must have a load(root, **options) method")


_default: PluginHost | None = None
_lock = threading.Lock()


def default_host() -> PluginHost:
    """The process-wide host, created and filled from entry points on first use."""
    global _default
    with _lock:
        if _default is None:
            host = PluginHost()
            host.load_entry_points()
            _default = host
        return _default


def reload_plugins() -> PluginHost:
    """Forget every loaded plugin and discover them again (after a ``pip install``)."""
    global _default
    with _lock:
        _default = None
    return default_host()
