"""Squeeze-and-Excitation (Hu et al., 2018) as a third-party registry-core plugin."""
