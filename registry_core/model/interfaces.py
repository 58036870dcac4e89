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

Token stages. What flows between components is a map (``"NCHW"``) unless a component
says otherwise: a stem or block whose ``output_format`` is ``"NLC"`` gives tokens,
``N x (P + H/r * W/r) x C``, where ``r`` is the reduction so far and the first ``P``
tokens (``prefix_tokens``: a class token, say) belong to no patch; the rest are the
patch grid in row-major order. A block or head reads the format its ``input_format``
names, and the core refuses at build time a model whose parts disagree. A block that
turns maps into tokens sets ``prefix_tokens`` to how many it adds; other blocks keep
their input's. A head that reads tokens is built with ``prefix_tokens=P`` as well, so
it can tell the class token from the patches.

Feature taps. Feature levels are numbered as timm numbers them: besides each stage's
output, a stem or block may give earlier maps that count as levels (ResNet's stem
activation before its max-pool, VGG's map before each pool). Such a component lists
them in ``feature_taps`` (``FeatureTap(module, channels, reduction)``: the submodule
whose output it is, its channels, and its reduction relative to the component's input)
and returns them from ``forward_taps(x) -> (output, [tap maps in that order])``. The
core records each tap in ``feature_info`` (module ``stem.<module>`` or
``stages.<s>.<b>.<module>``) and never names an architecture.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn

from ..errors import InvalidOverrideError

MAPS = "NCHW"
TOKENS = "NLC"
FORMATS = (MAPS, TOKENS)


class FeatureTap(NamedTuple):
    """An earlier feature level inside a stem or block: the submodule whose output it is
    (a path inside the component), its channels, and its reduction relative to the
    component's input. A tap is a map (``"NCHW"``)."""

    module: str
    channels: int
    reduction: int


class _Tapped(nn.Module):
    """``feature_taps`` and the default ``forward_taps`` for a component without taps."""

    __jit_ignored_attributes__ = ["feature_taps"]  # build-time data; TorchScript compiles forward_taps only
    feature_taps: tuple[FeatureTap, ...] = ()

    def forward_taps(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The output and each of ``feature_taps``' maps; a component with taps overrides this."""
        taps: list[Tensor] = []
        return self.forward(x), taps


class Stem(_Tapped):
    """First layers of a model: image in, feature map (or tokens) out."""

    output_format = MAPS  # TOKENS: N x (prefix_tokens + patches) x out_channels
    prefix_tokens = 0  # with TOKENS: how many leading tokens belong to no patch

    def __init__(self, in_chans: int, out_channels: int, reduction: int):
        super().__init__()
        self.in_chans = in_chans
        self.out_channels = out_channels
        self.reduction = reduction


class Block(_Tapped):
    """One residual unit, conv layer, transformer block or module of a stage."""

    trims_border = False
    input_format = MAPS  # what it reads; TOKENS for a block of a token stage
    output_format = MAPS  # what it gives
    prefix_tokens: int | None = None  # tokens from maps: how many prefix tokens it adds; None: as its input has

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride


class Head(nn.Module):
    """Last feature map in, logits out.

    A head builds its final linear layer with ``self.make_classifier(features)`` and
    stores it under ``classifier_name`` (``"fc"`` unless the head says otherwise); the
    inherited ``reset`` then rebuilds exactly that layer. A head laid out differently
    overrides ``reset``.
    """

    classifier_name = "fc"
    unpooled = False  # True after set_global_pool(""): forward returns the map it was given
    input_format = MAPS  # TOKENS: built with prefix_tokens=P too, and given N x (P + L) x C tokens
    default_pool = "avg"  # the pooling reset_classifier brings back to an unpooled head given classes

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.in_features = in_features
        self.num_classes = num_classes
        self.unpooled = False

    def make_classifier(self, features: int) -> nn.Module:
        """The classifier for ``features`` pre-logit features and ``self.num_classes``
        classes: a linear layer, or ``nn.Identity`` for ``num_classes=0``."""
        self.pre_logits_features = features
        return nn.Linear(features, self.num_classes) if self.num_classes > 0 else nn.Identity()

    def reset(self, num_classes: int) -> None:
        """Replace the classifier with a freshly initialised one for ``num_classes``."""
        if not hasattr(self, "pre_logits_features"):
            raise NotImplementedError(f"{type(self).__name__} builds no classifier with make_classifier(); it must implement reset()")
        self.num_classes = num_classes
        setattr(self, self.classifier_name, self.make_classifier(self.pre_logits_features))

    def set_global_pool(self, global_pool: str) -> None:
        """timm's ``global_pool``: ``''`` (with ``num_classes=0``) makes ``forward``
        return its input map unpooled; a head that pools otherwise overrides this."""
        raise InvalidOverrideError("global_pool", f"head {type(self).__name__} cannot change its pooling")

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
