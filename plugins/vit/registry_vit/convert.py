"""Weight converters between torchvision's / timm's ViT layouts and ours.

Our blocks use timm's names inside a block, so timm's checkpoints convert by renaming
prefixes. torchvision's name the same tensors otherwise (``ln_1``, the attention's
``in_proj_weight``, the MLP's ``0``/``3``) with the same shapes and layout, so a
per-block prefix map serves it too. Each map is built from one block's table for the
variant's depth, and reverses with ``invert_prefixes``.
"""

from __future__ import annotations

from registry_core import Converter, invert_prefixes, rename_prefixes

from .models import VARIANTS

TORCHVISION_MODEL = {
    "conv_proj.": "stem.proj.",
    "class_token": "stem.cls_token",
    "encoder.pos_embedding": "stem.pos_embed",
    "encoder.ln.": "norm.",
    "heads.head.": "head.fc.",
}
TORCHVISION_BLOCK = {
    "ln_1.": "norm1.",
    "self_attention.in_proj_": "attn.qkv.",
    "self_attention.out_proj.": "attn.proj.",
    "ln_2.": "norm2.",
    "mlp.0.": "mlp.fc1.",
    "mlp.3.": "mlp.fc2.",
}
TIMM_MODEL = {
    "patch_embed.proj.": "stem.proj.",
    "cls_token": "stem.cls_token",
    "pos_embed": "stem.pos_embed",
    "norm.": "norm.",
    "head.": "head.fc.",
}


def torchvision_prefixes(depth: int) -> dict[str, str]:
    """torchvision's prefix -> ours, for a ViT of ``depth`` blocks."""
    blocks = {f"encoder.layers.encoder_layer_{i}.{theirs}": f"stages.{i}.0.{ours}"
              for i in range(depth) for theirs, ours in TORCHVISION_BLOCK.items()}
    return {**TORCHVISION_MODEL, **blocks}


def timm_prefixes(depth: int) -> dict[str, str]:
    """timm's prefix -> ours, for a ViT of ``depth`` blocks."""
    return {**TIMM_MODEL, **{f"blocks.{i}.": f"stages.{i}.0." for i in range(depth)}}


def _converter(source: str, model: str, prefixes: dict[str, str], source_model: str | None) -> Converter:
    back = invert_prefixes(prefixes)
    return Converter(source=source, model=model, source_model=source_model,
                     to_ours=lambda state: rename_prefixes(state, prefixes),
                     from_ours=lambda state: rename_prefixes(state, back),
                     source_options={"image_size": "image_size" if source == "torchvision" else "img_size"})


CONVERTERS = tuple(
    converter
    for name, v in VARIANTS.items()
    for converter in (_converter("torchvision", name, torchvision_prefixes(v.depth), None),
                      _converter("timm", name, timm_prefixes(v.depth), v.timm_name))
)
