"""The core's version, in the base layer so every layer may record it."""

__version__ = "0.1.0"
