"""VGG-11/13/16/19 (configurations A, B, D, E), each with and without batch norm.

Five stages of 3x3 ``vgg_conv`` blocks at widths 64-128-256-512-512; the last block of
each stage has stride 2, i.e. closes the stage with a 2x2 max-pool. The head is the
core ``mlp``: adaptive 7x7 pool, 4096-4096 with dropout, classifier. ``drop_rate`` is
that dropout: 0.5 as torchvision's (and the paper's); timm's VGGs default to 0.
"""

from collections.abc import Callable
from dataclasses import replace

from registry_core import BlockSpec, Component, ModelMeta, ModelSpec, StageSpec

STAGE_WIDTHS = (64, 128, 256, 512, 512)

# name: (configuration in the paper, conv blocks per stage)
CONFIGS = {
    "vgg11": ("A", (1, 1, 2, 2, 2)),
    "vgg13": ("B", (2, 2, 2, 2, 2)),
    "vgg16": ("D", (2, 2, 3, 3, 3)),
    "vgg19": ("E", (2, 2, 4, 4, 4)),
}

HEAD = Component("mlp", {"pool_size": 7, "hidden": (4096, 4096), "drop_rate": 0.5})
"""The default head; ``drop_rate`` replaces its dropout."""

# 3x224x224 input and ImageNet mean/std are ModelMeta's defaults
META = ModelMeta(
    family="vgg",
    min_input_size=(3, 32, 32),  # five 2x2 pools take 32x32 to 1x1
    paper="Simonyan & Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition, ICLR 2015",
)


def vgg(depths: tuple[int, ...], batch_norm: bool = False, description: str = "", drop_rate: float = 0.5) -> ModelSpec:
    """A VGG with ``depths[i]`` conv blocks in stage ``i``."""
    options = {"batch_norm": True} if batch_norm else {}
    stages = tuple(  # as timm numbers levels, a stage's pooled output is none but the last's: its pre-pool tap is
        StageSpec("vgg_conv", options=options, blocks=(*[BlockSpec(width)] * (depth - 1), BlockSpec(width, stride=2)),
                  level=s == len(depths) - 1)
        for s, (width, depth) in enumerate(zip(STAGE_WIDTHS, depths))
    )
    head = replace(HEAD, options={**HEAD.options, "drop_rate": drop_rate})
    return ModelSpec(stem=Component("vgg_stem"), stages=stages, head=head, meta=replace(META, description=description))


def _builder(depths: tuple[int, ...], batch_norm: bool, description: str) -> Callable[..., ModelSpec]:
    """One variant's builder; its keyword parameters are the create() options."""

    def build(drop_rate: float = 0.5) -> ModelSpec:
        return vgg(depths, batch_norm=batch_norm, description=description, drop_rate=drop_rate)

    build.__doc__ = description
    return build


def _variants() -> dict[str, Callable[..., ModelSpec]]:
    models = {}
    for name, (config, depths) in CONFIGS.items():
        title = f"VGG-{name[3:]} (configuration {config})"
        models[name] = _builder(depths, False, title)
        models[f"{name}_bn"] = _builder(depths, True, f"{title} with batch norm")
    return models


MODELS = _variants()
