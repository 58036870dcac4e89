"""ConvNeXt's patchify stem, its block and the downsampling between stages.

Submodules take timm's names (``conv_dw``, ``norm``, ``mlp.fc1``/``fc2``, ``gamma``), so
a timm checkpoint converts by renaming block prefixes only, and torchvision's by a
fixed map inside each block. Every convolution and linear layer starts as both
libraries start them: a normal of std 0.02 truncated to [-2, 2], bias zero.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from registry_core import Block, DropPath, LayerNorm2d, Stem

EPS = 1e-6


def _trunc_normal_init(module: nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(layer.weight, std=0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.LayerNorm):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)


class ConvNeXtStem(Stem):
    """Non-overlapping ``patch`` x ``patch`` convolution, then LayerNorm over channels: 224 -> 56."""

    def __init__(self, in_chans: int, out_channels: int = 96, patch: int = 4):
        super().__init__(in_chans, out_channels, reduction=patch)
        self.conv = nn.Conv2d(in_chans, out_channels, patch, stride=patch)
        self.norm = LayerNorm2d(out_channels, eps=EPS)

    def init_weights(self) -> None:
        _trunc_normal_init(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.conv(x))


class Mlp(nn.Module):
    """Two linear layers with a GELU between them, on channels-last features."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class ConvNeXtBlock(Block):
    """``x + drop_path(gamma * mlp(norm(dwconv7x7(x))))``: a 7x7 depthwise convolution, a
    LayerNorm and an inverted MLP (``mlp_ratio`` x wider) on channels-last features, a
    per-channel layer scale starting at ``layer_scale``, and stochastic depth.

    Shape rule: the block keeps its width and resolution (``in_channels ==
    out_channels``, ``stride == 1``); ``convnext_downsample`` changes them between stages.
    """

    conformance_examples = (
        {"in_channels": 32, "out_channels": 32, "size": 8},
        {"in_channels": 16, "out_channels": 16, "size": 7, "drop_path": 0.5, "layer_scale": 0.5},
    )

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, drop_path: float = 0.0,
                 layer_scale: float = 1e-6, kernel: int = 7, mlp_ratio: int = 4):
        super().__init__(in_channels, out_channels, stride)
        if in_channels != out_channels or stride != 1:
            raise ValueError(f"a ConvNeXt block keeps its width and resolution: got {in_channels} -> {out_channels} "
                             f"channels, stride {stride}; use convnext_downsample between stages")
        self.conv_dw = nn.Conv2d(in_channels, in_channels, kernel, padding=kernel // 2, groups=in_channels)
        self.norm = nn.LayerNorm(in_channels, eps=EPS)
        self.mlp = Mlp(in_channels, mlp_ratio * in_channels)
        self.gamma = nn.Parameter(torch.full((in_channels,), float(layer_scale)))
        self.drop_path = DropPath(drop_path)
        self.layer_scale = layer_scale

    def init_weights(self) -> None:
        _trunc_normal_init(self)
        nn.init.constant_(self.gamma, self.layer_scale)

    def forward(self, x: Tensor) -> Tensor:
        branch = self.norm(self.conv_dw(x).permute(0, 2, 3, 1))
        branch = (self.mlp(branch) * self.gamma).permute(0, 3, 1, 2)
        return x + self.drop_path(branch)


class ConvNeXtDownsample(Block):
    """LayerNorm over channels, then a ``stride`` x ``stride`` convolution with that stride
    (2x2/2 between ConvNeXt's stages; 1x1 at stride 1)."""

    conformance_examples = (
        {"in_channels": 16, "out_channels": 32, "stride": 2, "size": 8},
        {"in_channels": 16, "out_channels": 8, "stride": 1, "size": 5},
    )

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2):
        super().__init__(in_channels, out_channels, stride)
        self.norm = LayerNorm2d(in_channels, eps=EPS)
        self.conv = nn.Conv2d(in_channels, out_channels, stride, stride=stride)

    def init_weights(self) -> None:
        _trunc_normal_init(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.norm(x))
