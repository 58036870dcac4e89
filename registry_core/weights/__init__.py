"""Tensors in files: safetensors I/O, the metadata format, strict assignment, input
adaptation, foreign checkpoints and converter key maps.

This layer knows nothing of plugins and never builds a model by name: callers build
the module and hand it (or a function that builds it) over.
"""
