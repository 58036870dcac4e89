"""The datasets bundled with registry-core's trainer, as a plugin like any other."""
