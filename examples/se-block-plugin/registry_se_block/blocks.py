"""The SE-ResNet bottleneck: a ResNet bottleneck whose residual branch is rescaled,
channel by channel, by a gate computed from its own global average."""

from torch import Tensor, nn

from registry_core import Block


class SqueezeExcite(nn.Module):
    """Squeeze (global average pool) then excite (two 1x1 convs, ReLU, sigmoid gate)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        if reduction < 1:
            raise ValueError(f"se_reduction must be at least 1, got {reduction}")
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        gate = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * gate.sigmoid()


class SEBottleneck(Block):
    """1x1 reduce, 3x3 (grouped for ResNeXt), 1x1 expand, SE on the expanded branch,
    then the shortcut is added. Accepts the ResNet/ResNeXt stage options
    (``groups``, ``width_per_group``, ``zero_init_last``), so it can replace the
    bottleneck of any ResNet or ResNeXt with ``create(..., block="se_bottleneck")``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        groups: int = 1,
        width_per_group: int = 64,
        zero_init_last: bool = False,
        se_reduction: int = 16,
    ):
        super().__init__(in_channels, out_channels, stride)
        width = int(out_channels / 4 * width_per_group / 64) * groups
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.se = SqueezeExcite(out_channels, se_reduction)
        self.act = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        if zero_init_last:
            nn.init.zeros_(self.bn3.weight)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.act(self.bn1(self.conv1(x)))
        y = self.act(self.bn2(self.conv2(y)))
        y = self.se(self.bn3(self.conv3(y)))
        return self.act(y + shortcut)
