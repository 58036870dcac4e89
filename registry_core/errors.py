"""Every exception registry-core raises, under one base class.

The CLI turns any ``RegistryCoreError`` into a one-line message and exit code 2, so a
user error never shows a traceback. Several types also derive from the built-in type a
caller would naturally catch (``LookupError``, ``ValueError``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RegistryCoreError(Exception):
    """Base class of every error registry-core raises on purpose."""


class UnknownNameError(RegistryCoreError, LookupError):
    """A name that nothing registered; carries up to three close matches."""

    kind = "name"

    def __init__(self, name: str, known: Iterable[str] = (), hint: str = ""):
        self.name = name
        self.suggestions = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.5)
        message = f"unknown {self.kind} {name!r}"
        if self.suggestions:
            message += "; did you mean " + ", ".join(repr(s) for s in self.suggestions) + "?"
        if hint:
            message += f" ({hint})"
        super().__init__(message)

    def __str__(self) -> str:  # LookupError would otherwise quote the whole message
        return self.args[0]


class UnknownModelError(UnknownNameError):
    kind = "model"


class UnknownComponentError(UnknownNameError):
    """An unknown stem, block, head, converter or dataset; ``kind`` says which."""

    def __init__(self, kind: str, name: str, known: Iterable[str] = (), hint: str = ""):
        self.kind = kind
        super().__init__(name, known, hint)


class DuplicateNameError(RegistryCoreError):
    """Two plugins registered the same name without one asking to override."""


class PluginError(RegistryCoreError):
    """A plugin broke the hook contract (a bad ``register`` call), or a name asked for
    belongs to a plugin that is broken. The plugin's record says which and why."""


class BrokenPluginError(UnknownNameError, PluginError):
    """The name was (or may have been) provided by a plugin that is broken."""


class SpecError(RegistryCoreError, ValueError):
    """A model spec or component that does not keep the interface contract."""


class InvalidOverrideError(RegistryCoreError, ValueError):
    """A create-time override the model cannot honour; the message names the parameter."""

    def __init__(self, parameter: str, message: str):
        self.parameter = parameter
        super().__init__(f"{parameter}: {message}")


class InputSizeError(RegistryCoreError, ValueError):
    """An input smaller than the model's ``min_input_size``, refused before any layer
    fails on it with a shape error of its own."""


class ConformanceError(RegistryCoreError, AssertionError):
    """A component or model failed a check of ``registry_core.testing``."""


class WeightsError(RegistryCoreError):
    """A weights file that cannot be read, or does not fit the model."""


class ConversionError(RegistryCoreError):
    """A checkpoint conversion that failed or did not reproduce the source outputs."""


class DataError(RegistryCoreError):
    """A dataset that is unknown, missing on disk, or unusable as asked."""


class TrainingError(RegistryCoreError):
    """Training options or state that cannot be used."""


class DivergenceError(TrainingError):
    """A run whose loss became non-finite or far above its first epoch's: it stops, the
    output folder keeps the last finite checkpoint, and the CLI exits with code 1."""


class WriteError(RegistryCoreError, OSError):
    """A file that cannot be written where asked: a folder in the way, no permission,
    a full disk. Still an ``OSError``, which is what a caller of a writer expects."""


class ScaffoldError(RegistryCoreError, ValueError):
    """A plugin skeleton that cannot be written: an unusable name or an occupied folder."""


class ExportError(RegistryCoreError):
    """A model that cannot be exported as asked, or whose export does not reproduce it."""


class QuantizationError(ExportError):
    """A quantised model that agrees too little with its float model on the held-out
    calibration images; ``report`` holds the figures. Nothing was written."""

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report


class PluginWarning(UserWarning):
    """Issued when a plugin is broken; the rest of the registry keeps working."""
