"""The core's own plugin: the generic heads, contributed through the same hooks as any
plugin's components (``registry-core plugins`` lists it as ``registry-core``)."""

from ..model.heads import ClassifierHead, MLPHead
from ..model.interfaces import Head
from .hookspecs import Register, hookimpl


@hookimpl
def register_heads(register: Register[type[Head]]) -> None:
    register("classifier", ClassifierHead)
    register("mlp", MLPHead)
