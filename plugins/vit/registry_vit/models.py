"""ViT specs: one table row per variant, torchvision's names and architecture.

A ViT is a patch-embedding stem, ``depth`` stages of one encoder block each (so
``feature_info``, ``features_only`` and ``forward_intermediates`` see every block, as
timm's do), the core's ``layer_norm`` as the final norm and its ``token_classifier``
head on the class token, whose linear layer starts at zero as torchvision's does. The
stage options are the block's width-defining ones (``num_heads``, ``mlp_dim``), so a
block swapped in with ``create(name, block=...)`` is built for the same shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from registry_core import BlockSpec, Component, ModelMeta, ModelSpec, StageSpec

PAPER = "Dosovitskiy et al., An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale, ICLR 2021"


class Variant(NamedTuple):
    patch_size: int
    depth: int
    width: int
    num_heads: int
    mlp_dim: int
    timm_name: str  # timm's model of the same architecture


VARIANTS = {
    "vit_b_16": Variant(16, 12, 768, 12, 3072, "vit_base_patch16_224"),
    "vit_b_32": Variant(32, 12, 768, 12, 3072, "vit_base_patch32_224"),
    "vit_l_16": Variant(16, 24, 1024, 16, 4096, "vit_large_patch16_224"),
    "vit_l_32": Variant(32, 24, 1024, 16, 4096, "vit_large_patch32_224"),
    "vit_h_14": Variant(14, 32, 1280, 16, 5120, "vit_huge_patch14_224"),
}


def vit_spec(name: str, image_size: int = 224, dropout: float = 0.0, attention_dropout: float = 0.0) -> ModelSpec:
    """The spec of ViT ``name`` for ``image_size`` images (the position embeddings fit that
    size only); ``dropout`` after the embeddings, the attention and in the MLPs,
    ``attention_dropout`` on the attention weights."""
    v = VARIANTS[name]
    block_options = {"num_heads": v.num_heads, "mlp_dim": v.mlp_dim}
    block_options.update({k: p for k, p in (("dropout", dropout), ("attention_dropout", attention_dropout)) if p})
    stem_options = {"out_channels": v.width, "patch_size": v.patch_size, "image_size": image_size}
    if dropout:
        stem_options["dropout"] = dropout
    size = (3, image_size, image_size)
    return ModelSpec(
        stem=Component("patch_embed", stem_options),
        stages=tuple(StageSpec("vit_block", 1, v.width, options=block_options, name=f"encoder_layer_{i}")
                     for i in range(v.depth)),
        norm=BlockSpec(v.width, block="layer_norm"),
        head=Component("token_classifier"),
        out_indices=3,  # features_only gives the last three blocks by default, as timm's ViT
        meta=ModelMeta(family="vit", input_size=size, min_input_size=size, fixed_input_size=True, first_conv="stem.proj",
                       description=f"ViT-{name[4].upper()}/{v.patch_size}: {v.depth} blocks of width {v.width}, "
                                   f"{v.num_heads} heads", paper=PAPER),
    )


def _builder(name: str) -> Callable[..., ModelSpec]:
    def build(image_size: int = 224, dropout: float = 0.0, attention_dropout: float = 0.0) -> ModelSpec:
        return vit_spec(name, image_size, dropout, attention_dropout)

    build.__doc__ = vit_spec(name).meta.description
    return build


MODELS: dict[str, Callable[..., ModelSpec]] = {name: _builder(name) for name in VARIANTS}
