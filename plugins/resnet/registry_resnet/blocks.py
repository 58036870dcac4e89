"""ResNet's stems and residual blocks.

Submodules keep torchvision's names (``conv1``/``bn1``/.../``downsample.0``/``.1``), so
a checkpoint from torchvision or timm converts by renaming stage prefixes only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from registry_core import Block, DropPath, FeatureTap, Stem


def conv_bn_pair(in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    """A bias-free "same"-padded convolution (He-initialised, fan-out) and its BatchNorm.

    The convolution skips PyTorch's default initialisation, which would only be
    overwritten: the large variants build about a third faster.
    """
    conv = nn.utils.skip_init(
        nn.Conv2d, in_channels, out_channels, kernel, stride, padding=kernel // 2, groups=groups, bias=False,
        device=torch.get_default_device(),
    )
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv, nn.BatchNorm2d(out_channels)


class _ConvStem(Stem):
    """Convolution, BatchNorm, ReLU, then an optional 3x3/2 max-pool. With the pool, the
    activation before it is a feature level (timm's ``act1``, level 0)."""

    def __init__(self, in_chans: int, out_channels: int, kernel: int, stride: int, pool: bool):
        super().__init__(in_chans, out_channels, reduction=stride * (2 if pool else 1))
        self.conv, self.bn = conv_bn_pair(in_chans, out_channels, kernel, stride)
        self.act = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1) if pool else nn.Identity()
        self.tapped = pool
        self.feature_taps = (FeatureTap("act", out_channels, stride),) if pool else ()

    def init_weights(self) -> None:
        """Nothing left to do: ``conv_bn_pair`` already gave the core's default
        initialisation (and ``zero_init_last`` its zeros), so the core skips a second pass."""

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.act(self.bn(self.conv(x))))

    def forward_taps(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        x = self.act(self.bn(self.conv(x)))
        return self.pool(x), [x] if self.tapped else []


class ResNetStem(_ConvStem):
    """The ImageNet stem: 7x7/2 convolution and 3x3/2 max-pool, so 224 -> 56."""

    def __init__(self, in_chans: int, out_channels: int = 64):
        super().__init__(in_chans, out_channels, kernel=7, stride=2, pool=True)


class CifarStem(_ConvStem):
    """A 3x3/1 convolution and no pooling: a 32x32 image keeps its resolution."""

    def __init__(self, in_chans: int, out_channels: int = 64):
        super().__init__(in_chans, out_channels, kernel=3, stride=1, pool=False)


class _ResidualBlock(Block):
    """``relu(drop_path(residual(x)) + shortcut(x))``; the shortcut is a strided 1x1
    convolution + BatchNorm when the block changes the channel count or resolution, else
    identity. ``drop_path`` is stochastic depth on the residual branch, as timm's ResNet
    applies it (no module, so no change to the layout, when 0)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, drop_path: float = 0.0):
        super().__init__(in_channels, out_channels, stride)
        reshapes = stride != 1 or in_channels != out_channels
        self.downsample = nn.Sequential(*conv_bn_pair(in_channels, out_channels, 1, stride)) if reshapes else None
        self.relu = nn.ReLU(inplace=True)
        self.drop_path = DropPath(drop_path) if drop_path else nn.Identity()

    def init_weights(self) -> None:
        """Nothing left to do: ``conv_bn_pair`` already gave the core's default
        initialisation (and ``zero_init_last`` its zeros), so the core skips a second pass."""

    def residual(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        out = self.drop_path(self.residual(x))
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


class BasicBlock(_ResidualBlock):
    """Two 3x3 convolutions (ResNet-18/34). ``zero_init_last`` starts the residual
    branch at zero, so each block begins as the identity (Goyal et al., 2017)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, zero_init_last: bool = False,
                 drop_path: float = 0.0):
        super().__init__(in_channels, out_channels, stride, drop_path)
        self.conv1, self.bn1 = conv_bn_pair(in_channels, out_channels, 3, stride)
        self.conv2, self.bn2 = conv_bn_pair(out_channels, out_channels, 3)
        if zero_init_last:
            nn.init.zeros_(self.bn2.weight)

    def residual(self, x: Tensor) -> Tensor:
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))


class BottleneckBlock(_ResidualBlock):
    """1x1 reduce, 3x3 grouped (carrying the stride: "v1.5"), 1x1 expand.

    The inner width is ``int(out_channels / 4 * width_per_group / 64) * groups``, so
    ``groups`` and ``width_per_group`` give ResNeXt (32 x 4d) and Wide ResNet (1 x 128)
    from the same block.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        groups: int = 1,
        width_per_group: int = 64,
        zero_init_last: bool = False,
        drop_path: float = 0.0,
    ):
        super().__init__(in_channels, out_channels, stride, drop_path)
        width = int(out_channels / 4 * width_per_group / 64) * groups
        if groups < 1 or width < 1:
            raise ValueError(f"groups={groups}, width_per_group={width_per_group} leave no inner channels for out_channels={out_channels}")
        self.conv1, self.bn1 = conv_bn_pair(in_channels, width, 1)
        self.conv2, self.bn2 = conv_bn_pair(width, width, 3, stride, groups)
        self.conv3, self.bn3 = conv_bn_pair(width, out_channels, 1)
        if zero_init_last:
            nn.init.zeros_(self.bn3.weight)

    def residual(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        return self.bn3(self.conv3(x))
