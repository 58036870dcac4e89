"""The core's own plugin: the generic heads and norm blocks, contributed through the same
hooks as any plugin's components (``registry-core plugins`` lists it as ``registry-core``)."""

from ..model.heads import ClassifierHead, MLPHead
from ..model.interfaces import Block, Head
from ..model.norms import TokenLayerNorm
from ..model.token_head import TokenClassifierHead
from .hookspecs import Register, hookimpl


@hookimpl
def register_heads(register: Register[type[Head]]) -> None:
    register("classifier", ClassifierHead)
    register("mlp", MLPHead)
    register("token_classifier", TokenClassifierHead)


@hookimpl
def register_blocks(register: Register[type[Block]]) -> None:
    register("layer_norm", TokenLayerNorm)
