"""ConvNeXt specs: one table row per variant, torchvision's and timm's names.

A model is the patchify stem and four stages of ConvNeXt blocks; stages 2 to 4 start
with a ``convnext_downsample`` block (LayerNorm, 2x2/2 convolution), as timm's stages
do. Stochastic depth rises linearly over all blocks, from 0 in the first to
``drop_path_rate`` in the last (torchvision's ``stochastic_depth_prob``, whose defaults
these are; timm's default is 0). Blocks carry only non-default options, so a default
model's first block carries none.
"""

from __future__ import annotations

from collections.abc import Callable

from registry_core import BlockSpec, Component, ModelMeta, ModelSpec, StageSpec, drop_path_rates

PAPER = "Liu et al., A ConvNet for the 2020s, CVPR 2022"
LAYER_SCALE = 1e-6

VARIANTS: dict[str, tuple[tuple[int, ...], tuple[int, ...], float]] = {
    "convnext_tiny": ((3, 3, 9, 3), (96, 192, 384, 768), 0.1),
    "convnext_small": ((3, 3, 27, 3), (96, 192, 384, 768), 0.4),
    "convnext_base": ((3, 3, 27, 3), (128, 256, 512, 1024), 0.5),
    "convnext_large": ((3, 3, 27, 3), (192, 384, 768, 1536), 0.5),
}
"""name -> (blocks per stage, channels per stage, default drop_path_rate)."""

# The stem shrinks by 4 and each of the three unpadded 2x2/2 downsamplings by 2, so a
# 32x32 image reaches the last stage as 1x1; 31 pixels leave nothing.
SMALLEST_INPUT = (3, 32, 32)


def convnext_spec(depths: tuple[int, ...], dims: tuple[int, ...], meta: ModelMeta, *, drop_path_rate: float = 0.0,
                  layer_scale: float = LAYER_SCALE, drop_rate: float = 0.0) -> ModelSpec:
    """The spec of any four-stage ConvNeXt; ``drop_rate`` is dropout before the classifier."""
    stages = []
    for i, (dim, rates) in enumerate(zip(dims, drop_path_rates(depths, drop_path_rate))):
        blocks = [BlockSpec(dim, stride=2, block="convnext_downsample")] if i else []
        for rate in rates:
            options = {"drop_path": rate} if rate else {}
            if layer_scale != LAYER_SCALE:
                options["layer_scale"] = layer_scale
            blocks.append(BlockSpec(dim, options=options))
        stages.append(StageSpec("convnext", blocks=tuple(blocks)))
    head = Component("classifier", {"norm": "layer_norm", "init": "trunc_normal",
                                    **({"drop_rate": drop_rate} if drop_rate else {})})
    return ModelSpec(stem=Component("convnext_stem", {"out_channels": dims[0]}), stages=tuple(stages), head=head, meta=meta)


def convnext(name: str, depths: tuple[int, ...], dims: tuple[int, ...], default_rate: float) -> Callable[..., ModelSpec]:
    """A builder for one variant; its keyword parameters are the create() options."""
    meta = ModelMeta(family="convnext", min_input_size=SMALLEST_INPUT, first_conv="stem.conv",
                     description=f"ConvNeXt-{name.split('_')[1].capitalize()}: {'-'.join(map(str, depths))} blocks, "
                                 f"{dims[0]} to {dims[-1]} channels", paper=PAPER)

    def build(drop_path_rate: float = default_rate, layer_scale: float = LAYER_SCALE, drop_rate: float = 0.0) -> ModelSpec:
        return convnext_spec(depths, dims, meta, drop_path_rate=drop_path_rate, layer_scale=layer_scale, drop_rate=drop_rate)

    build.__doc__ = meta.description
    return build


MODELS: dict[str, Callable[..., ModelSpec]] = {name: convnext(name, *row) for name, row in VARIANTS.items()}
"""Models with the same name, architecture and parameter count in torchvision and timm."""
