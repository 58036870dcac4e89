"""The GoogLeNet and Inception v3 stems, with torchvision's optional input transform.

Google's Inception weights were trained on inputs scaled to [-1, 1] (mean and std
0.5). torchvision's ``transform_input=True`` lets such a model take ImageNet mean/std
normalised input instead, by undoing that normalisation and applying the 0.5 one; the
stem does the same here, so the conversion happens before the first convolution.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from registry_core import IMAGENET_MEAN, IMAGENET_STD, FeatureTap, InvalidOverrideError, Stem

from .blocks import ConvBnRelu


class ImageNetToInception(nn.Module):
    """Maps ImageNet-normalised RGB input to the [-1, 1] scale (no weights, no state)."""

    def __init__(self, in_chans: int):
        super().__init__()
        if in_chans != 3:
            raise InvalidOverrideError("in_chans", f"transform_input converts ImageNet-normalised RGB input, so it needs "
                                       f"in_chans=3, got {in_chans}; pass transform_input=False for other inputs "
                                       "(scaled to [-1, 1], as the original Inception weights expect)")
        scale = torch.tensor([s / 0.5 for s in IMAGENET_STD]).view(1, 3, 1, 1)
        shift = torch.tensor([(m - 0.5) / 0.5 for m in IMAGENET_MEAN]).view(1, 3, 1, 1)
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("shift", shift, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale + self.shift


def _input_transform(in_chans: int, enabled: bool) -> nn.Module:
    return ImageNetToInception(in_chans) if enabled else nn.Identity()


class GoogLeNetStem(Stem):
    """7x7/2 conv, 3x3/2 max-pool, 1x1 and 3x3 convs, 3x3/2 max-pool: 224 -> 192 x 28x28."""

    def __init__(self, in_chans: int, transform_input: bool = False):
        super().__init__(in_chans, out_channels=192, reduction=8)
        self.transform = _input_transform(in_chans, transform_input)
        self.conv1 = ConvBnRelu(in_chans, 64, 7, stride=2, padding=3)
        self.pool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = ConvBnRelu(64, 64, 1)
        self.conv3 = ConvBnRelu(64, 192, 3, padding=1)
        self.pool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool1(self.conv1(self.transform(x)))
        return self.pool2(self.conv3(self.conv2(x)))


class InceptionV3Stem(Stem):
    """Five unpadded-or-same convs and two 3x3/2 max-pools: 299 -> 192 x 35x35.

    The unpadded layers trim the border, so the map is a little smaller than
    ``size / 8`` (35 rather than 37 at 299). The maps before each pool are feature
    levels 0 and 1, as timm numbers Inception v3's (``Conv2d_2b_3x3``, ``Conv2d_4a_3x3``).
    """

    feature_taps = (FeatureTap("conv2b", 64, 2), FeatureTap("conv4a", 192, 4))

    def __init__(self, in_chans: int, transform_input: bool = False):
        super().__init__(in_chans, out_channels=192, reduction=8)
        self.transform = _input_transform(in_chans, transform_input)
        self.conv1a = ConvBnRelu(in_chans, 32, 3, stride=2)
        self.conv2a = ConvBnRelu(32, 32, 3)
        self.conv2b = ConvBnRelu(32, 64, 3, padding=1)
        self.pool1 = nn.MaxPool2d(3, stride=2)
        self.conv3b = ConvBnRelu(64, 80, 1)
        self.conv4a = ConvBnRelu(80, 192, 3)
        self.pool2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_taps(x)[0]

    def forward_taps(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        early = self.conv2b(self.conv2a(self.conv1a(self.transform(x))))
        late = self.conv4a(self.conv3b(self.pool1(early)))
        return self.pool2(late), [early, late]
