"""Weight converters between torchvision's / timm's ConvNeXt layouts and ours.

Ours is timm's with each stage's downsampling as its first block: timm's
``stages.N.downsample.{0,1}`` is our ``stages.N.0.{norm,conv}`` and its
``stages.N.blocks.M`` our ``stages.N.(M+1)`` (stage 0 has no downsampling). Inside a
block timm's names equal ours. torchvision keeps the stem, stages and downsamplings in
one ``features`` sequence and names a block's layers by position (``BLOCK_TORCHVISION``);
its layer scale is ``C x 1 x 1`` where ours is ``C``, the one tensor that changes shape.
"""

from __future__ import annotations

from functools import partial

from torch import Tensor

from registry_core import Converter, invert_prefixes, rename_prefixes

from .models import VARIANTS

BLOCK_TORCHVISION = {"block.0.": "conv_dw.", "block.2.": "norm.", "block.3.": "mlp.fc1.", "block.5.": "mlp.fc2.",
                     "layer_scale": "gamma"}
"""torchvision's ``CNBlock`` -> ours (``block`` is its Sequential: conv, permute, norm, fc1, GELU, fc2, permute)."""

STEM_AND_HEAD = {
    "torchvision": {"features.0.0.": "stem.conv.", "features.0.1.": "stem.norm.", "classifier.0.": "head.norm.",
                    "classifier.2.": "head.fc."},
    "timm": {"stem.0.": "stem.conv.", "stem.1.": "stem.norm.", "head.norm.": "head.norm.", "head.fc.": "head.fc."},
}


def torchvision_prefixes(depths: tuple[int, ...]) -> dict[str, str]:
    """torchvision -> ours: ``features.2N-1`` holds stage N's blocks (counting from 1)
    and ``features.2N`` the downsampling before stage N+1."""
    prefixes = dict(STEM_AND_HEAD["torchvision"])
    for stage, depth in enumerate(depths):
        offset = 1 if stage else 0
        if stage:
            prefixes[f"features.{2 * stage}.0."] = f"stages.{stage}.0.norm."
            prefixes[f"features.{2 * stage}.1."] = f"stages.{stage}.0.conv."
        for block in range(depth):
            for theirs, ours in BLOCK_TORCHVISION.items():
                prefixes[f"features.{2 * stage + 1}.{block}.{theirs}"] = f"stages.{stage}.{block + offset}.{ours}"
    return prefixes


def timm_prefixes(depths: tuple[int, ...]) -> dict[str, str]:
    """timm -> ours."""
    prefixes = dict(STEM_AND_HEAD["timm"])
    for stage, depth in enumerate(depths):
        offset = 1 if stage else 0
        if stage:
            prefixes[f"stages.{stage}.downsample.0."] = f"stages.{stage}.0.norm."
            prefixes[f"stages.{stage}.downsample.1."] = f"stages.{stage}.0.conv."
        for block in range(depth):
            prefixes[f"stages.{stage}.blocks.{block}."] = f"stages.{stage}.{block + offset}."
    return prefixes


def _reshape_layer_scales(state: dict[str, Tensor], suffix: str, to_torchvision: bool) -> dict[str, Tensor]:
    return {key: (value.reshape(-1, 1, 1) if to_torchvision else value.reshape(-1)) if key.endswith(suffix) else value
            for key, value in state.items()}


def torchvision_to_ours(state, *, prefixes):
    return _reshape_layer_scales(rename_prefixes(state, prefixes), ".gamma", to_torchvision=False)


def ours_to_torchvision(state, *, prefixes):
    return _reshape_layer_scales(rename_prefixes(state, invert_prefixes(prefixes)), ".layer_scale", to_torchvision=True)


def _converters(name: str, depths: tuple[int, ...]) -> tuple[Converter, Converter]:
    torchvision, timm = torchvision_prefixes(depths), timm_prefixes(depths)
    return (
        Converter("torchvision", name, to_ours=partial(torchvision_to_ours, prefixes=torchvision),
                  from_ours=partial(ours_to_torchvision, prefixes=torchvision)),
        Converter("timm", name, to_ours=partial(rename_prefixes, prefixes=timm),
                  from_ours=partial(rename_prefixes, prefixes=invert_prefixes(timm))),
    )


CONVERTERS = tuple(converter for name, (depths, _, _) in VARIANTS.items() for converter in _converters(name, depths))
