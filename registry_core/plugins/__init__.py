"""The plugin layer: the hook contract, the registry of named components, and the
host that finds plugins through the ``registry_core`` entry-point group.

The host's names load on first use: ``plugins.records`` is importable without torch.
"""

_FROM_HOST = ("PluginHost", "default_host", "reload_plugins")


def __getattr__(name):
    if name in _FROM_HOST:
        from . import host

        return getattr(host, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_FROM_HOST)
