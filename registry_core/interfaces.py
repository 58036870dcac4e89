"""The shape contract every stem, block and head keeps.

A model is ``stem -> stages of blocks -> head``. The core wires components together
using only what these base classes promise, so any plugin's block fits any stage:

* ``Stem(in_chans, **options)`` turns an image into the first feature map and says
  how many channels it produces (``out_channels``) and by what factor it shrinks the
  image (``reduction``).
* ``Block(in_channels, out_channels, stride=1, **options)`` maps ``N x in x H x W`` to
  ``N x out x H/stride x W/stride`` (floor or ceil) and owns its own shortcut.
  A block built from unpadded convolutions sets ``trims_border = True``: its output may
  then be smaller than ``H/stride`` (LeNet's 5x5 valid convolutions do this).
* ``Head(in_features, num_classes, **options)`` turns the last feature map into logits
  and can be rebuilt for another number of classes with ``reset(num_classes)``;
  ``num_classes=0`` means "no classifier": the head returns pooled features.
"""

from __future__ import annotations

from torch import Tensor, nn


class Stem(nn.Module):
    """First layers of a model: image in, feature map out."""

    def __init__(self, in_chans: int, out_channels: int, reduction: int):
        super().__init__()
        self.in_chans = in_chans
        self.out_channels = out_channels
        self.reduction = reduction


class Block(nn.Module):
    """One residual unit, conv layer or module of a stage."""

    trims_border = False

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride


class Head(nn.Module):
    """Last feature map in, logits out."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.in_features = in_features
        self.num_classes = num_classes

    def reset(self, num_classes: int) -> None:
        """Replace the classifier with a freshly initialised one for ``num_classes``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement reset()")

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


COMPONENT_BASES: dict[str, type[nn.Module]] = {"stem": Stem, "block": Block, "head": Head}
