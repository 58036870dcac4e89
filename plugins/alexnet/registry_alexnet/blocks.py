"""AlexNet's layers: a large strided convolution as the stem, then convolutions each
followed by ReLU and, where the map shrinks, an overlapping 3x3/2 max-pool."""

from torch import Tensor, nn

from registry_core import Block, Stem


def _overlapping_pool(stride: int) -> nn.Module:
    """AlexNet's 3x3 window moved by 2: unpadded, so it may drop a border row."""
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride}")
    return nn.MaxPool2d(3, stride=2) if stride == 2 else nn.Identity()


class AlexNetStem(Stem):
    """conv 11x11/4 + ReLU + max-pool 3x3/2: 224x224 -> 27x27."""

    def __init__(self, in_chans: int, out_channels: int = 64):
        super().__init__(in_chans, out_channels, reduction=8)
        self.conv = nn.Conv2d(in_chans, out_channels, 11, stride=4, padding=2)
        self.act = nn.ReLU(inplace=True)
        self.pool = _overlapping_pool(2)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.act(self.conv(x)))


class AlexNetConvBlock(Block):
    """conv ``kernel_size`` (same padding) + ReLU, then the overlapping pool if ``stride=2``."""

    trims_border = True

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, kernel_size: int = 3):
        super().__init__(in_channels, out_channels, stride)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.act = nn.ReLU(inplace=True)
        self.pool = _overlapping_pool(stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.act(self.conv(x)))
