"""LeNet's layers as a stem and a block: an unpadded 5x5 convolution, activation, 2x2 pooling."""

from torch import Tensor, nn

from registry_core import Block, Stem

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


def _conv_act_pool(in_channels: int, out_channels: int, act: str, pool: int) -> nn.Sequential:
    if act not in ACTIVATIONS:
        raise ValueError(f"act must be one of {', '.join(ACTIVATIONS)}, got {act!r}")
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 5), ACTIVATIONS[act](), nn.MaxPool2d(pool))


class _KeepsPyTorchInit:
    """LeNet-5 keeps PyTorch's own per-layer initialisation (uniform, fan-in), which the
    digits recipe and its figures were tuned with, rather than the core's He default."""

    def init_weights(self) -> None:
        """Nothing to do: the layers were initialised by PyTorch when built."""


class LeNetStem(_KeepsPyTorchInit, Stem):
    """C1 + S2: 32x32 -> 6 x 14x14."""

    def __init__(self, in_chans: int, out_channels: int = 6, act: str = "relu"):
        super().__init__(in_chans, out_channels, reduction=2)
        self.body = _conv_act_pool(in_chans, out_channels, act, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class LeNetConvBlock(_KeepsPyTorchInit, Block):
    """C3 + S4: an unpadded 5x5 convolution, so the map shrinks by 4 before pooling."""

    trims_border = True

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2, act: str = "relu"):
        super().__init__(in_channels, out_channels, stride)
        self.body = _conv_act_pool(in_channels, out_channels, act, stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)
