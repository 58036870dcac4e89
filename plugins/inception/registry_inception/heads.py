"""The auxiliary classifiers GoogLeNet and Inception v3 train with.

They are ordinary registry heads, tapped after a stage by the spec's ``aux_heads``;
in training the model returns ``registry_core.AuxLogits`` and the trainer adds their
weighted losses. ``num_classes=0`` makes them return their pre-logit features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from registry_core import Head, InputSizeError

from .blocks import ConvBnRelu


class GoogLeNetAuxHead(Head):
    """Adaptive average pool to 4x4, 1x1 conv, a hidden linear layer with dropout, classifier.

    The adaptive pool gives torchvision's exact result on the 14x14 maps of a 224 input
    and works at any input size.
    """

    classifier_name = "fc2"

    def __init__(self, in_features: int, num_classes: int, width: int = 128, hidden: int = 1024, pool_size: int = 4, drop_rate: float = 0.7):
        super().__init__(in_features, num_classes)
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.conv = ConvBnRelu(in_features, width, 1)
        self.fc1 = nn.Linear(width * pool_size * pool_size, hidden)
        self.act = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(drop_rate)
        self.fc2 = self.make_classifier(hidden)

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.drop(self.act(self.fc1(self.conv(self.pool(x)).flatten(1))))
        return x if pre_logits else self.fc2(x)


class InceptionV3AuxHead(Head):
    """5x5/3 average pool, 1x1 conv, unpadded 5x5 conv, global pool, classifier.

    On maps of 17x17 or more (inputs from about 299) this is torchvision's head exactly.
    On smaller maps the 5x5/3 pool would leave less than the 5x5 the next conv needs,
    so the map is average-pooled adaptively to 5x5 instead (repeating values if it is
    smaller): the head then still trains at the 75x75 minimum input.
    """

    def __init__(self, in_features: int, num_classes: int, width: int = 128, hidden: int = 768):
        super().__init__(in_features, num_classes)
        self.conv0 = ConvBnRelu(in_features, width, 1)
        self.conv1 = ConvBnRelu(width, hidden, 5)
        self.fc = self.make_classifier(hidden)

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        _check_batch(x, self.training)
        x = F.adaptive_avg_pool2d(self.conv1(self.conv0(_pool_to_5x5(x))), 1).flatten(1)
        return x if pre_logits else self.fc(x)


def _pool_to_5x5(x: Tensor, exact_from: int = 17) -> Tensor:
    """torchvision's 5x5/3 pool on maps from ``exact_from`` pixels, an adaptive one below."""
    if min(x.shape[-2], x.shape[-1]) >= exact_from:
        return F.avg_pool2d(x, 5, stride=3)
    return F.adaptive_avg_pool2d(x, 5)


def _check_batch(x: Tensor, training: bool) -> None:
    """The 5x5 convolution leaves a 1x1 map, so at batch 1 its BatchNorm would see one
    value per channel and fail; say which head that is and how to train anyway."""
    if training and x.shape[0] == 1:
        raise InputSizeError("inception_v3's auxiliary head (aux_heads.0, InceptionV3AuxHead) cannot train on a "
                             "batch of 1: its BatchNorm after the 5x5 convolution sees one value per channel. Train "
                             "with batches of 2 or more, or create the model with aux_logits=False (timm's "
                             "inception_v3 has no auxiliary head by default)")


# torch.fx records these as calls rather than tracing into their shape tests, so
# create_feature_extractor traces the head in training mode too
torch.fx.wrap("_pool_to_5x5")
torch.fx.wrap("_check_batch")
