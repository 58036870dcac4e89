"""Subcommands of ``registry-core``, one module per area (see ``registry_core.cli``)."""
