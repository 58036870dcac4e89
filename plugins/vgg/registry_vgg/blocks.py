"""VGG's only layer type, as a block: 3x3 convolution (+ batch norm) + ReLU, and a
2x2 max-pool when the block closes a stage.

VGG has no stem (the first stage works on the image), so ``VGGStem`` passes the image
through; this keeps torchvision's layout, where ``features.0`` is a stage's conv.
"""

from torch import Tensor, nn

from registry_core import Block, FeatureTap, Stem


class VGGStem(Stem):
    """The image itself, unchanged: ``out_channels = in_chans``, no reduction."""

    def __init__(self, in_chans: int):
        super().__init__(in_chans, in_chans, reduction=1)

    def forward(self, x: Tensor) -> Tensor:
        return x


class VGGConvBlock(Block):
    """conv 3x3 (+ BN) + ReLU; with ``stride > 1`` a ``stride x stride`` max-pool follows,
    which is how VGG halves the map at the end of each stage. The map before that pool
    is a feature level (timm's numbering: VGG's levels are the five pre-pool maps and the
    last pool's output)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, batch_norm: bool = False):
        super().__init__(in_channels, out_channels, stride)
        if stride < 1:
            raise ValueError(f"stride must be at least 1, got {stride}")
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()
        self.act = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(stride) if stride > 1 else nn.Identity()
        self.tapped = stride > 1
        self.feature_taps = (FeatureTap("act", out_channels, 1),) if stride > 1 else ()

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.act(self.bn(self.conv(x))))

    def forward_taps(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        x = self.act(self.bn(self.conv(x)))
        return self.pool(x), [x] if self.tapped else []
