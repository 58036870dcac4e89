"""The manifest: what ``list``, ``info`` and ``plugins`` show, cached so they answer
without importing torch, torchvision, timm or any plugin.

What plugins provide changes only when a distribution is installed, removed or edited,
or when the user's plugin selection or preferences change. The manifest's key covers
exactly that: every ``registry_core`` entry point with its distribution and version,
the modification times and sizes of its source files (an editable install changes
without a new version; so does the core's own source), the interpreter's environment, and ``REGISTRY_CORE_PLUGINS`` / ``REGISTRY_CORE_PREFER`` /
``prefer.txt``. A different key is a different file, so environments never share
one and nothing stale is ever read. A file that fails ``index_schema``'s checks (corrupt,
foreign, hand-edited or forged) is ignored and rebuilt.

The index is lazy: building it loads the plugins and builds each model once on the meta
device for its parameter counts, but counts no FLOPs; ``remember`` caches those per model
on first request. A rebuild reuses the counts of every model whose distributions (and
their source files) are unchanged since an earlier index, so installing one plugin
costs the work of that plugin's models only.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .._version import __version__
from ..errors import RegistryCoreError
from ..files import atomic_write, home
from .index_schema import IndexRejected, check_document, content_digest

FORMAT = "registry-core-manifest"
VERSION = 2
GROUP = "registry_core"
ENV_VARS = ("REGISTRY_CORE_PLUGINS", "REGISTRY_CORE_PREFER")
MAX_BYTES = 64 * 2**20  # far above any real index; a larger file is not ours
REUSED_FIELDS = ("params", "params_inference", "aux_heads", "gflops")  # what costs a model build to know
SLOW_BUILD_S = 1.0
# the command line sets this: off a terminal, a slow rebuild is then said on stderr (a library stays quiet)
announce_slow_builds = False
KEPT_INDEXES = 8  # an index per environment and plugin set seen lately; older ones are removed


def live_host() -> Any:
    """The plugin host already loaded in this process, if any: then it is the truth
    (plugins added in-process included) and the manifest is not consulted."""
    return getattr(sys.modules.get("registry_core.plugins.host"), "_default", None)


def manifest_key() -> dict[str, Any]:
    """Everything a manifest's content depends on, cheap to compute."""
    importlib.invalidate_caches()
    points = []
    for ep in importlib.metadata.entry_points(group=GROUP):
        dist = ep.dist
        points.append([ep.name, ep.value, dist.name if dist else "", dist.version if dist else "",
                       _module_stamp(ep.value.split(":")[0].split(".")[0])])
    prefer = home() / "prefer.txt"
    return {
        "format": FORMAT,
        "version": VERSION,
        "core": [__version__, _source_stamp(Path(__file__).resolve().parent.parent)],
        "python": sys.version.split()[0],
        "environment": sys.prefix,
        "entry_points": sorted(points),
        "settings": {name: os.environ.get(name, "") for name in ENV_VARS},
        "prefer_file": prefer.read_text() if prefer.is_file() else "",
    }


def _module_stamp(top_module: str) -> str:
    """The state of a plugin's source files, found without importing the plugin."""
    spec = importlib.util.find_spec(top_module)  # locates a top-level module without running it
    if spec is None or spec.origin is None:
        return "missing"
    origin = Path(spec.origin)
    return _source_stamp(origin.parent if origin.name == "__init__.py" else origin)


def _source_stamp(path: Path) -> str:
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        digest.update(f"{file}:{stat.st_mtime_ns}:{stat.st_size};".encode())
    return digest.hexdigest()[:16]


def manifest_path(key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return home() / "manifests" / f"{digest}.json"


def current() -> dict[str, Any]:
    """The manifest for this environment as it is now, built if there is none yet."""
    key = manifest_key()
    path = manifest_path(key)
    cached = _read(path, key)
    if cached is not None:
        return cached
    started = time.perf_counter()
    tty = sys.stderr.isatty()
    if tty:  # a person is waiting: say why this call is slow
        print("registry-core: indexing the installed plugins (once per change of plugins)...", end="", file=sys.stderr, flush=True)
    content = build(_earlier_counts(key))
    _write(path, key, content)
    _prune(path.parent, keep=KEPT_INDEXES)
    elapsed = time.perf_counter() - started
    if tty:
        print(f" {elapsed:.1f} s", file=sys.stderr)
    elif elapsed > SLOW_BUILD_S and announce_slow_builds:  # the command's log gets one line explaining a wait
        print(f"registry-core: indexed the installed plugins in {elapsed:.1f} s (once per change of plugins)",
              file=sys.stderr)
    return content


def remember(field: str, values: dict[str, Any], host: Any = None) -> None:
    """Cache models' lazily computed ``field`` (their FLOP counts, by model name) in the
    current index: one read and one write however many models. Given the live ``host``,
    only when that host holds exactly the installed plugins (one added in-process would
    make the answers not the index's)."""
    if not values or (host is not None and not all(record.entry_point for record in host.records.values())):
        return
    key = manifest_key()
    path = manifest_path(key)
    content = _read(path, key)
    if content is None:
        return
    models = content["models"]
    changed = {name: value for name, value in values.items() if name in models and models[name].get(field) != value}
    for name, value in changed.items():
        models[name][field] = value
    if changed:
        _write(path, key, content)


def _write(path: Path, key: dict[str, Any], content: dict[str, Any]) -> None:
    try:
        with atomic_write(path, mode="w") as handle:
            json.dump({"key": key, "content": content, "digest": content_digest(content)}, handle)
    except OSError:
        pass  # an unwritable home folder only costs the next call the same work


def _read(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The checked content of the index at ``path``, or None: anything off is never shown."""
    try:
        if path.stat().st_size > MAX_BYTES:
            return None
        return check_document(json.loads(path.read_text()), key)
    except (OSError, ValueError, RecursionError, IndexRejected):
        return None


def _prune(folder: Path, keep: int) -> None:
    with contextlib.suppress(OSError):
        indexes = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in indexes[keep:]:
            old.unlink()


def _earlier_counts(key: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """From the newest earlier index of this same core and interpreter: each model's
    ``depends`` and costly counts, to be reused where the model's sources are unchanged."""
    folder = home() / "manifests"
    try:
        candidates = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)[:8]
    except OSError:
        return {}
    same = {field: key[field] for field in ("format", "version", "core", "python", "environment")}
    for path in candidates:
        try:
            if path.stat().st_size > MAX_BYTES:
                continue
            document = json.loads(path.read_text())
            old_key = document.get("key") if isinstance(document, dict) else None
            if not isinstance(old_key, dict) or old_key == key or any(old_key.get(f) != v for f, v in same.items()):
                continue
            return check_document(document, old_key)["models"]
        except (OSError, ValueError, RecursionError, IndexRejected):
            continue
    return {}


def build(earlier: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Load every plugin and record what the listings show. Imports torch. A model whose
    ``depends`` equal its entry in ``earlier`` keeps that entry's counts without a build."""
    from ..plugins.host import default_host
    from .catalog import live_model_info

    host = default_host()
    registry = host.registry
    stamps = _distribution_stamps(manifest_key())
    models: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    for name in registry.names("model"):
        try:
            depends = _depends(host, name, stamps)
            old = (earlier or {}).get(name)
            reuse = {f: old[f] for f in REUSED_FIELDS if f in old} if old and old.get("depends") == depends else None
            models[name] = {**live_model_info(name, flops=False, counts=reuse), "depends": depends}
        except Exception as exc:  # one unbuildable model must not hide the others
            unavailable[name] = str(exc) if isinstance(exc, RegistryCoreError) else f"{type(exc).__name__}: {exc}"
    weights = {name: registry.get("weights", name).obj.describe() for name in registry.names("weights")}
    return {
        "models": models,
        "unavailable": unavailable,
        "weights": weights,
        "components": {kind: registry.names(kind) for kind in registry.entries},
        "plugins": [record.as_dict() for record in host.records.values()],
        "contested": [{"kind": c.kind, "name": c.name, "text": str(c), "settled": c.chosen is not None}
                      for c in registry.contests.values()],
    }


def _distribution_stamps(key: dict[str, Any]) -> dict[str, str]:
    stamps: dict[str, list[str]] = {}
    for _name, _value, dist, version, stamp in key["entry_points"]:
        stamps.setdefault(dist, []).append(f"{version}:{stamp}")
    return {dist: ";".join(sorted(values)) for dist, values in stamps.items()}


def _depends(host: Any, name: str, stamps: dict[str, str]) -> dict[str, str]:
    """The distributions whose components build ``name`` (the model's own, its stem,
    blocks, neck and heads), each with the stamp of its source files."""
    from .build import spec_from

    registry = host.registry
    spec = spec_from(host, name, {})
    parts = [("model", name), ("stem", spec.stem.name), ("head", spec.head.name),
             *(("block", block) for stage in spec.stages for block in stage.block_names()),
             *(("head", aux.name) for aux in spec.aux_heads)]
    if spec.neck is not None and spec.neck.block:
        parts.append(("block", spec.neck.block))
    depends = {}
    for kind, part in parts:
        dist = registry.get(kind, part).provenance.distribution or "registry-core"
        depends[dist] = stamps.get(dist, "core")
    return dict(sorted(depends.items()))
