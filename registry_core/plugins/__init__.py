"""The plugin layer: the hook contract, the registry of named components, and the
host that finds plugins through the ``registry_core`` entry-point group."""

from .host import PluginHost, default_host, reload_plugins

__all__ = ["PluginHost", "default_host", "reload_plugins"]
