"""ResNet, ResNeXt and Wide ResNet specs: one table row per variant, torchvision's names.

Every variant is four stages of 64/128/256/512 x expansion channels (expansion 4 for
bottlenecks) with strides 1, 2, 2, 2; variants differ only in block, depths, ``groups``
and ``width_per_group``. Stages carry only non-default block options, so a block from
another plugin swapped in with ``create(name, block=...)`` sees nothing it did not ask for.
"""

from __future__ import annotations

from collections.abc import Callable

from registry_core import IMAGENET_MEAN, IMAGENET_STD, BlockSpec, Component, ModelMeta, ModelSpec, StageSpec, drop_path_rates

STAGE_WIDTHS = (64, 128, 256, 512)
EXPANSION = {"basic": 1, "bottleneck": 4}

RESNET_PAPER = "He et al., Deep Residual Learning for Image Recognition, CVPR 2016"
RESNEXT_PAPER = "Xie et al., Aggregated Residual Transformations for Deep Neural Networks, CVPR 2017"
WIDE_PAPER = "Zagoruyko and Komodakis, Wide Residual Networks, BMVC 2016"

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def resnet_spec(
    block: str,
    depths: tuple[int, ...],
    meta: ModelMeta,
    *,
    stem: str = "resnet_stem",
    groups: int = 1,
    width_per_group: int = 64,
    zero_init_last: bool = False,
    drop_rate: float = 0.0,
    drop_path_rate: float = 0.0,
) -> ModelSpec:
    """The spec of any ResNet-shaped model; ``drop_rate`` is dropout before the classifier,
    ``drop_path_rate`` the stochastic depth of the last block (rising linearly from 0 over
    every block, as timm's ResNet)."""
    given = {"groups": (groups, 1), "width_per_group": (width_per_group, 64), "zero_init_last": (zero_init_last, False)}
    options = {name: value for name, (value, default) in given.items() if value != default}
    rates = drop_path_rates(depths, drop_path_rate)
    stages = tuple(
        StageSpec(block, depth, width * EXPANSION[block], 1 if i == 0 else 2, options, name=f"layer{i + 1}",
                  blocks=tuple(BlockSpec(width * EXPANSION[block], 1 if i == 0 or b else 2, {"drop_path": rate} if rate else {})
                               for b, rate in enumerate(rates[i])) if drop_path_rate else ())
        for i, (depth, width) in enumerate(zip(depths, STAGE_WIDTHS))
    )
    head = Component("classifier", {"drop_rate": drop_rate} if drop_rate else {})
    return ModelSpec(stem=Component(stem), stages=stages, head=head, meta=meta)


# Every stride-2 layer is padded (k // 2), so a 1x1 map stays 1x1: ResNets run on a
# single pixel, as torchvision's and timm's do.
SMALLEST_INPUT = (3, 1, 1)


def _imagenet_meta(family: str, description: str, paper: str) -> ModelMeta:
    return ModelMeta(
        family=family, input_size=(3, 224, 224), min_input_size=SMALLEST_INPUT, mean=IMAGENET_MEAN, std=IMAGENET_STD,
        description=description, paper=paper,
    )


def _cifar_meta(description: str) -> ModelMeta:
    return ModelMeta(
        family="resnet",
        num_classes=10,
        input_size=(3, 32, 32),
        min_input_size=SMALLEST_INPUT,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        crop_pct=1.0,
        description=description,
        paper=RESNET_PAPER,
    )


def basic_resnet(depths: tuple[int, ...], meta: ModelMeta, stem: str = "resnet_stem") -> Callable[..., ModelSpec]:
    """A builder for a basic-block ResNet; its keyword parameters are the create() options."""

    def build(zero_init_last: bool = False, drop_rate: float = 0.0, drop_path_rate: float = 0.0) -> ModelSpec:
        return resnet_spec("basic", depths, meta, stem=stem, zero_init_last=zero_init_last, drop_rate=drop_rate,
                           drop_path_rate=drop_path_rate)

    build.__doc__ = meta.description
    return build


def bottleneck_resnet(
    depths: tuple[int, ...], meta: ModelMeta, groups: int = 1, width_per_group: int = 64
) -> Callable[..., ModelSpec]:
    """A builder for a bottleneck ResNet/ResNeXt/Wide ResNet whose ``groups`` and
    ``width_per_group`` default to the variant's and may be overridden at create()."""

    def build(
        groups: int = groups, width_per_group: int = width_per_group, zero_init_last: bool = False, drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> ModelSpec:
        return resnet_spec(
            "bottleneck", depths, meta,
            groups=groups, width_per_group=width_per_group, zero_init_last=zero_init_last, drop_rate=drop_rate,
            drop_path_rate=drop_path_rate,
        )

    build.__doc__ = meta.description
    return build


IMAGENET_MODELS: dict[str, Callable[..., ModelSpec]] = {
    "resnet18": basic_resnet((2, 2, 2, 2), _imagenet_meta("resnet", "ResNet-18: basic blocks", RESNET_PAPER)),
    "resnet34": basic_resnet((3, 4, 6, 3), _imagenet_meta("resnet", "ResNet-34: basic blocks", RESNET_PAPER)),
    "resnet50": bottleneck_resnet((3, 4, 6, 3), _imagenet_meta("resnet", "ResNet-50 v1.5: bottlenecks, stride on the 3x3", RESNET_PAPER)),
    "resnet101": bottleneck_resnet((3, 4, 23, 3), _imagenet_meta("resnet", "ResNet-101 v1.5: bottlenecks, stride on the 3x3", RESNET_PAPER)),
    "resnet152": bottleneck_resnet((3, 8, 36, 3), _imagenet_meta("resnet", "ResNet-152 v1.5: bottlenecks, stride on the 3x3", RESNET_PAPER)),
    "resnext50_32x4d": bottleneck_resnet((3, 4, 6, 3), _imagenet_meta("resnext", "ResNeXt-50, 32 groups x 4 channels", RESNEXT_PAPER), 32, 4),
    "resnext101_32x8d": bottleneck_resnet((3, 4, 23, 3), _imagenet_meta("resnext", "ResNeXt-101, 32 groups x 8 channels", RESNEXT_PAPER), 32, 8),
    "resnext101_64x4d": bottleneck_resnet((3, 4, 23, 3), _imagenet_meta("resnext", "ResNeXt-101, 64 groups x 4 channels", RESNEXT_PAPER), 64, 4),
    "wide_resnet50_2": bottleneck_resnet((3, 4, 6, 3), _imagenet_meta("wide_resnet", "Wide ResNet-50-2: bottlenecks twice as wide inside", WIDE_PAPER), 1, 128),
    "wide_resnet101_2": bottleneck_resnet((3, 4, 23, 3), _imagenet_meta("wide_resnet", "Wide ResNet-101-2: bottlenecks twice as wide inside", WIDE_PAPER), 1, 128),
}
"""Models with the same name, architecture and parameter count in torchvision and timm."""

CIFAR_MODELS: dict[str, Callable[..., ModelSpec]] = {
    "resnet18_cifar": basic_resnet((2, 2, 2, 2), _cifar_meta("ResNet-18 for 32x32 images: 3x3 stem, no pooling"), "cifar_stem"),
    "resnet34_cifar": basic_resnet((3, 4, 6, 3), _cifar_meta("ResNet-34 for 32x32 images: 3x3 stem, no pooling"), "cifar_stem"),
}
