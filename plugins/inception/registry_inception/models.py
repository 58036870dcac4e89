"""GoogLeNet and Inception v3 specs: per-module branch widths as tables, aux heads by stage name.

Stages are split so that each auxiliary classifier taps the end of a named stage
(GoogLeNet: after 4a and 4d; Inception v3: after the last 17x17 module).

Normalisation follows ``transform_input``: without it the model expects inputs scaled
to [-1, 1] (mean and std 0.5, as the original Google weights and timm's port); with it,
ImageNet mean/std input, as torchvision's pretrained models.
"""

from __future__ import annotations

from dataclasses import replace

from registry_core import IMAGENET_MEAN, IMAGENET_STD, AuxHeadSpec, BlockSpec, Component, ModelMeta, ModelSpec, StageSpec

INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)

# Table 1 of the GoogLeNet paper: #1x1, (#3x3 reduce, #3x3), (#5x5 reduce, #5x5), pool proj.
GOOGLENET_MODULES = {
    "3a": (64, (96, 128), (16, 32), 32),
    "3b": (128, (128, 192), (32, 96), 64),
    "4a": (192, (96, 208), (16, 48), 64),
    "4b": (160, (112, 224), (24, 64), 64),
    "4c": (128, (128, 256), (24, 64), 64),
    "4d": (112, (144, 288), (32, 64), 64),
    "4e": (256, (160, 320), (32, 128), 128),
    "5a": (256, (160, 320), (32, 128), 128),
    "5b": (384, (192, 384), (48, 128), 128),
}

# Stage name -> its modules; "pool3" / "pool2" is a 3x3/2 or 2x2/2 max-pool first.
GOOGLENET_STAGES = {
    "inception3": ("3a", "3b"),
    "inception4a": ("pool3", "4a"),
    "inception4b_4d": ("4b", "4c", "4d"),
    "inception4e": ("4e",),
    "inception5": ("pool2", "5a", "5b"),
}

GOOGLENET_META = ModelMeta(
    family="inception",
    input_size=(3, 224, 224),
    min_input_size=(3, 15, 15),
    mean=INCEPTION_MEAN,
    std=INCEPTION_STD,
    description="GoogLeNet (Inception v1) with BatchNorm, as torchvision's; two auxiliary classifiers in training.",
    paper="Szegedy et al., Going Deeper with Convolutions, CVPR 2015",
)

INCEPTION_V3_META = replace(
    GOOGLENET_META,
    input_size=(3, 299, 299),
    min_input_size=(3, 75, 75),
    description="Inception v3; one auxiliary classifier in training.",
    paper="Szegedy et al., Rethinking the Inception Architecture for Computer Vision, CVPR 2016",
)


def _googlenet_block(key: str, channels: int) -> BlockSpec:
    if key.startswith("pool"):
        return BlockSpec(channels, stride=2, options={"kernel_size": int(key[4:])}, block="googlenet_pool")
    branch1x1, branch3x3, branch5x5, branch_pool = GOOGLENET_MODULES[key]
    options = {"branch1x1": branch1x1, "branch3x3": branch3x3, "branch5x5": branch5x5, "branch_pool": branch_pool}
    return BlockSpec(branch1x1 + branch3x3[1] + branch5x5[1] + branch_pool, options=options)


def _googlenet_stages() -> tuple[StageSpec, ...]:
    stages, channels = [], 192
    for name, keys in GOOGLENET_STAGES.items():
        blocks = []
        for key in keys:
            blocks.append(_googlenet_block(key, channels))
            channels = blocks[-1].out_channels
        stages.append(StageSpec("googlenet_inception", blocks=tuple(blocks), name=name))
    return tuple(stages)


def _inception_a(branch_pool: int) -> BlockSpec:
    options = {"branch1x1": 64, "branch5x5": (48, 64), "branch3x3dbl": (64, 96, 96), "branch_pool": branch_pool}
    return BlockSpec(64 + 64 + 96 + branch_pool, options=options, block="inception_a")


def _inception_c(c7: int) -> BlockSpec:
    options = {"branch1x1": 192, "branch7x7": (c7, c7, 192), "branch7x7dbl": (c7, c7, c7, c7, 192), "branch_pool": 192}
    return BlockSpec(768, options=options, block="inception_c")


_INCEPTION_E = BlockSpec(
    2048,
    options={"branch1x1": 320, "branch3x3": (384, 384), "branch3x3dbl": (448, 384, 384), "branch_pool": 192},
    block="inception_e",
)

# Mixed_5b-5d, Mixed_6a-6e, Mixed_7a-7c in torchvision's names.
INCEPTION_V3_STAGES = (
    StageSpec("inception_a", blocks=(_inception_a(32), _inception_a(64), _inception_a(64)), name="mixed5"),
    StageSpec(
        "inception_c",
        blocks=(
            BlockSpec(768, stride=2, options={"branch3x3": 384, "branch3x3dbl": (64, 96, 96)}, block="inception_b"),
            *(_inception_c(c7) for c7 in (128, 160, 160, 192)),
        ),
        name="mixed6",
    ),
    StageSpec(
        "inception_e",
        blocks=(
            BlockSpec(1280, stride=2, options={"branch3x3": (192, 320), "branch7x7x3": (192, 192, 192, 192)}, block="inception_d"),
            _INCEPTION_E,
            _INCEPTION_E,
        ),
        name="mixed7",
    ),
)


def _spec(stem: str, stages, aux: tuple[AuxHeadSpec, ...], meta: ModelMeta, aux_logits: bool, transform_input: bool, drop_rate: float) -> ModelSpec:
    if transform_input:
        meta = replace(meta, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return ModelSpec(
        stem=Component(stem, {"transform_input": True} if transform_input else {}),
        stages=stages,
        head=Component("classifier", {"drop_rate": drop_rate}),
        meta=meta,
        aux_heads=aux if aux_logits else (),
    )


def googlenet(aux_logits: bool = True, transform_input: bool = False, drop_rate: float = 0.2) -> ModelSpec:
    """GoogLeNet; in training, auxiliary logits after 4a and 4d (loss weight 0.3 each)."""
    aux = (AuxHeadSpec("googlenet_aux", "inception4a", 0.3, output_name="aux_logits1", output_position=1),  # torchvision's
           AuxHeadSpec("googlenet_aux", "inception4b_4d", 0.3, output_name="aux_logits2", output_position=0))  # order
    return _spec("googlenet_stem", _googlenet_stages(), aux, GOOGLENET_META, aux_logits, transform_input, drop_rate)


def inception_v3(aux_logits: bool = True, transform_input: bool = False, drop_rate: float = 0.5) -> ModelSpec:
    """Inception v3; in training, auxiliary logits after the last 17x17 module (loss weight 0.4)."""
    aux = (AuxHeadSpec("inception_v3_aux", "mixed6", 0.4, output_name="aux_logits"),)
    return _spec("inception_v3_stem", INCEPTION_V3_STAGES, aux, INCEPTION_V3_META, aux_logits, transform_input, drop_rate)
