"""What is known about one plugin, as plain data: importing this needs no torch, so a
listing can be answered from the manifest without loading any plugin."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any


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
    contested: list[str] = field(default_factory=list)

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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PluginRecord:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
