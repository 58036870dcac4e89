"""Names to modules: build a registered model from its spec, load weights into it,
convert foreign checkpoints, and describe what the registry holds.

``create`` sits at the top of this layer; nothing in the core below it calls it.
"""
