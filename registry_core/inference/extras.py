"""The optional ``[onnx]`` extra: whether its packages are installed, asked without
importing them or torch, so that a command refuses at once and names what is missing."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

from ..errors import ExportError

ONNX_ADVICE = "pip install 'registry-core[onnx]'"
RUNTIMES = ("torch", "onnxruntime")  # where predict runs its batches


def installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a module half-imported or stubbed out without a spec
        return False


def require(packages: Iterable[str], what: str) -> None:
    """Raise an ``ExportError`` naming each of ``packages`` that is not installed, and the extra."""
    missing = [name for name in packages if not installed(name)]
    if missing:
        raise ExportError(f"{what} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                          f"not installed: {ONNX_ADVICE}")
