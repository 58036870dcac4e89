"""The manifest: what ``list``, ``info`` and ``plugins`` show, cached so they answer
without importing torch, torchvision, timm or any plugin.

What plugins provide changes only when a distribution is installed, removed or edited,
or when the user's plugin selection or preferences change. The manifest's key covers
exactly that: every ``registry_core`` entry point with its distribution and version,
the modification times and sizes of its source files (an editable install changes
without a new version; so does the core's own source), the interpreter's environment, and ``REGISTRY_CORE_PLUGINS`` / ``REGISTRY_CORE_PREFER`` /
``prefer.txt``. A different key is a different file, so environments never share
one and nothing stale is ever read. A corrupt or foreign file is ignored and rebuilt.
"""

from __future__ import annotations

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

FORMAT = "registry-core-manifest"
VERSION = 2
GROUP = "registry_core"
ENV_VARS = ("REGISTRY_CORE_PLUGINS", "REGISTRY_CORE_PREFER")


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
    if tty:  # a person is waiting: say why this call is slow (scripts and logs get no noise)
        print("registry-core: indexing the installed plugins (once per change of plugins)...", end="", file=sys.stderr, flush=True)
    content = build()
    _write(path, key, content)
    if tty:
        print(f" {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return content


def _write(path: Path, key: dict[str, Any], content: dict[str, Any]) -> None:
    try:
        with atomic_write(path, mode="w") as handle:
            json.dump({"key": key, "content": content}, handle)
    except OSError:
        pass  # an unwritable home folder only costs the next call the same work


def _read(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("key") != key or not isinstance(document.get("content"), dict):
        return None  # foreign, truncated or hand-edited: build it again
    return document["content"]


def build() -> dict[str, Any]:
    """Load every plugin and record what the listings show. Imports torch."""
    from ..plugins.host import default_host
    from .catalog import live_model_info

    host = default_host()
    registry = host.registry
    models: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    for name in registry.names("model"):
        try:
            models[name] = live_model_info(name)
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
