"""What a model is: component interfaces, specs, and composing a spec into a module.

This layer knows nothing of plugins, names or files: ``assemble.build`` takes a spec and
a function that resolves component names to classes.
"""
