"""The SE-ResNet bottleneck: a ResNet bottleneck whose residual branch is rescaled,
channel by channel, by a gate computed from its own global average."""

import functools

from torch import Tensor, nn

from registry_core import Block, get_component


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


@functools.cache
def se_bottleneck() -> type[Block]:
    """The SE bottleneck class: registry-resnet's registered ``bottleneck`` with the gate
    applied to its residual branch before the shortcut is added.

    It subclasses the registered class (``registry_core.get_component``), so it takes
    every option the bottleneck takes (``groups``, ``width_per_group``,
    ``zero_init_last``) and keeps its layout, and can replace the bottleneck of any
    ResNet or ResNeXt with ``create(..., block="se_bottleneck")``. The class is built on
    first use, once every plugin has loaded; the plugin registers this function.
    """
    bottleneck = get_component("block", "bottleneck")

    class SEBottleneck(bottleneck):
        def __init__(self, in_channels: int, out_channels: int, stride: int = 1, *, se_reduction: int = 16, **options):
            super().__init__(in_channels, out_channels, stride, **options)
            self.se = SqueezeExcite(out_channels, se_reduction)

        def residual(self, x: Tensor) -> Tensor:
            return self.se(super().residual(x))

    return SEBottleneck
