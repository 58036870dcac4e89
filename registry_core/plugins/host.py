"""Finding and loading plugins: entry-point group ``registry_core``, lazily, once.

Each plugin's hooks are called on their own, with a ``register`` callback bound to that
plugin, so every entry carries its provenance and one broken plugin (import error,
exception in a hook, misspelled hook, clashing name) is reported and skipped while the
rest of the registry keeps working.

Environment:
  ``REGISTRY_CORE_PLUGINS``  comma-separated plugin or distribution names to load
                            (unset or empty: all); the core's own plugin always loads.
  ``REGISTRY_CORE_PREFER``   comma-separated ``name=distribution`` (or
                            ``kind:name=distribution``) settling names that two plugins
                            register; lines of the same form in
                            ``$REGISTRY_CORE_HOME/prefer.txt`` apply too (the variable wins).
  ``REGISTRY_CORE_TRACE``    set to 1 to trace plugin loading and hook calls on stderr,
                            with the traceback of every failure.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
import sys
import threading
import traceback
import warnings
from typing import Any

import pluggy

from .._version import __version__
from ..errors import PluginError, PluginWarning
from ..files import home
from ..model.spec import ModelSpec
from . import core_plugin, hookspecs
from .records import PluginRecord
from .registry import KIND_OF_HOOK, KINDS, Entry, Provenance, Registry

GROUP = "registry_core"
ENV_PLUGINS = "REGISTRY_CORE_PLUGINS"
ENV_TRACE = "REGISTRY_CORE_TRACE"
ENV_PREFER = "REGISTRY_CORE_PREFER"
PREFER_FILE = "prefer.txt"


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-")


def read_preferences() -> dict[str, str]:
    """``name -> distribution`` choices for contested names: ``prefer.txt`` in the home
    folder, then ``REGISTRY_CORE_PREFER`` over it."""
    lines: list[str] = []
    path = home() / PREFER_FILE
    if path.is_file():
        lines += [line.split("#", 1)[0] for line in path.read_text().splitlines()]
    lines += os.environ.get(ENV_PREFER, "").split(",")
    preferences = {}
    for line in lines:
        name, sep, dist = line.strip().partition("=")
        if not line.strip():
            continue
        if not sep or not name.strip() or not dist.strip():
            warnings.warn(PluginWarning(f"ignoring preference {line.strip()!r}: expected NAME=DISTRIBUTION"), stacklevel=3)
            continue
        preferences[name.strip()] = dist.strip()
    return preferences


class PluginHost:
    """A pluggy plugin manager plus the registry it fills. Tests make their own."""

    def __init__(self, *, only: str | None = None, trace: bool | None = None, prefer: dict[str, str] | None = None):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry(read_preferences() if prefer is None else dict(prefer))
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
        seen = {_normalise(n) for r in self.records.values() for n in (r.name, r.distribution)}
        for name in sorted(self.only - seen):
            warnings.warn(PluginWarning(f"{ENV_PLUGINS} names {name!r}, but no installed plugin or distribution has that name"),
                          stacklevel=2)

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
        if not hooks:
            warnings.warn(PluginWarning(f"registry-core plugin {prov} implements no hook (no @registry_core.hookimpl "
                                        "function), so it provides nothing"), stacklevel=2)
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
            self.registry.add_all(staged)
        except Exception as exc:
            self.pm.unregister(plugin)
            return self._broken(prov, f"{type(exc).__name__}: {exc}", hooks=hooks, staged=staged)
        record = self._record(prov, hooks=hooks)
        self.records[prov.plugin] = record
        self._refresh_records()
        for contest in self.registry.contests.values():
            if prov in contest.claimants and contest.chosen is None:
                warnings.warn(PluginWarning(f"{contest}: asking for it is an error until one is chosen "
                                            f"({ENV_PREFER}='{contest.name}=DISTRIBUTION')"), stacklevel=2)
        self._say(f"plugin {prov.plugin!r} provided " + _summary(record.provided))
        return record

    def _refresh_records(self) -> None:
        """What each working plugin holds now: a later plugin may have contested or
        overridden one of its names, or one of its entries may have failed."""
        working = {name: r for name, r in self.records.items() if r.status == "ok"}
        for r in working.values():
            r.provided, r.overrides, r.contested = {}, [], []
        for (kind, name), claims in self.registry.claims.items():
            held = self.registry.entries[kind].get(name)
            for claim in claims:
                record = working.get(claim.provenance.plugin)
                if record is None:
                    continue
                if held is not None and held.provenance == claim.provenance:
                    record.provided.setdefault(kind, []).append(name)
                    if held.replaces is not None:
                        record.overrides.append(f"{kind} {name} (from {held.replaces})")
                contest = self.registry.contests.get((kind, name))
                if contest is not None and claim.provenance in contest.claimants:
                    record.contested.append(str(contest))

    def entry_failed(self, kind: str, name: str, exc: BaseException) -> None:
        """A registered entry raised when used (a model builder with a bug): that entry
        is marked broken with the cause; its plugin and everything else keep working."""
        entry = self.registry.entries[kind][name]
        cause = f"{kind} {name!r} raised {type(exc).__name__}: {exc}"
        self.registry.mark_entry_broken(kind, name, cause)
        self._refresh_records()
        owner = self.records.get(entry.provenance.plugin)
        if owner is not None:
            owner.error = "; ".join(filter(None, [owner.error, cause]))
        self._trace_exception(exc)
        warning = PluginWarning(f"registry-core plugin {entry.provenance}: {cause}")
        warning.entry = (kind, name)  # type: ignore[attr-defined]  # which entry: `list` reports it once, as unavailable
        warnings.warn(warning, stacklevel=3)

    def _trace_exception(self, exc: BaseException | None) -> None:
        if self.trace and exc is not None:
            sys.stderr.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))

    def _record(self, prov: Provenance, **fields: Any) -> PluginRecord:
        return PluginRecord(prov.plugin, prov.distribution, prov.version, prov.entry_point, **fields)

    def _broken(self, prov: Provenance, cause: str, hooks=(), staged=()) -> PluginRecord:
        self._trace_exception(sys.exc_info()[1])
        record = self._record(prov, status="broken", error=cause, hooks=list(hooks))
        self.records[prov.plugin] = record
        existing = {(e.kind, e.name) for e in staged if e.name in self.registry.entries[e.kind]}
        self.registry.mark_broken(prov.plugin, cause, [(e.kind, e.name) for e in staged if (e.kind, e.name) not in existing],
                                  _kinds_of_hooks(hooks))
        warnings.warn(PluginWarning(f"registry-core plugin {prov} is broken: {cause}"), stacklevel=3)
        return record


def _kinds_of_hooks(hooks) -> set[str] | None:
    """The kinds of entry a broken plugin's hooks could have given (a misspelled hook:
    the kind it was close to); ``None`` when it has no hooks we know of (it failed to
    import), so it may have provided anything."""
    kinds = set()
    for hook in hooks:
        match = hook if hook in KIND_OF_HOOK else next(iter(difflib.get_close_matches(hook, KIND_OF_HOOK, n=1)), None)
        if match is None:
            return None
        kinds.add(KIND_OF_HOOK[match])
    return kinds or None


def _summary(provided: dict[str, list[str]]) -> str:
    return ", ".join(f"{len(names)} {kind}(s)" for kind, names in provided.items()) or "nothing"


class _Registrar:
    """The ``register`` callback a hook receives, bound to one plugin and one kind."""

    def __init__(self, kind: str, provenance: Provenance, staged: list[Entry]):
        self.kind, self.provenance, self.staged = kind, provenance, staged

    def __call__(self, *args: Any, override: bool = False) -> None:
        kind = KINDS[self.kind]
        if kind.record is not None:
            if len(args) != 1 or not isinstance(args[0], kind.record):
                raise PluginError(f"{kind.hook}: call register(record) with a registry_core.{kind.record.__name__}")
            name, obj = getattr(args[0], kind.named_by), args[0]
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
    deferred = callable(obj) and not isinstance(obj, type)  # a function returning the class, called on first use
    if base is not None and not deferred and not (isinstance(obj, type) and issubclass(obj, base)):
        raise PluginError(f"{kind} {name!r} must be a subclass of registry_core.{base.__name__} "
                          f"(or a function returning one), got {obj!r}")
    if kind == "model" and not (isinstance(obj, ModelSpec) or callable(obj)):
        raise PluginError(f"model {name!r} must be a ModelSpec or a function returning one")
    if kind == "dataset" and not callable(getattr(obj, "load", None)):
        raise PluginError(f"dataset {name!r} must have a load(root, **options) method")


_default: PluginHost | None = None
_lock = threading.RLock()
_loading = False


def default_host() -> PluginHost:
    """The process-wide host, created and filled from entry points on first use."""
    global _default, _loading
    with _lock:
        if _loading:
            raise PluginError("registry-core is still loading plugins: a plugin may look up registered components "
                              "(get_component, model_spec) when a model is built, not at import or inside a hook")
        if _default is None:
            _loading = True
            try:
                host = PluginHost()
                host.load_entry_points()
            finally:
                _loading = False
            _default = host
        return _default


class _HookSet:
    """Hook functions gathered into one plugin object (pluggy wants a hashable one)."""

    def __init__(self, hooks: dict[str, Any]):
        for name, fn in hooks.items():
            setattr(self, name, fn)


def add_plugin(name: str, *plugin: Any) -> PluginRecord:
    """Load a plugin into this process without installing it: a module (or object) with
    hook implementations, or the ``@hookimpl`` functions themselves. For trying a plugin
    in a session or a test; ``reload_plugins()`` forgets it. Returns its record."""
    if len(plugin) == 1 and not callable(plugin[0]):
        target = plugin[0]
    else:
        target = _HookSet({getattr(fn, "__name__", repr(fn)): fn for fn in plugin})
    return default_host().add_plugin(target, name)


def reload_plugins() -> PluginHost:
    """Forget every loaded plugin and discover them again (after a ``pip install``)."""
    global _default
    with _lock:
        _default = None
    return default_host()
