"""Inception modules as registry blocks: parallel branches concatenated on channels.

Each module takes its branch widths as options, so one class serves every position
of a network; the spec (``models.py``) holds the widths of each position. A module
checks that its branches add up to ``out_channels`` and raises ``ValueError`` if not.
Submodule names follow torchvision's, so weight conversion only renames prefixes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from registry_core import Block


class ConvBnRelu(nn.Module):
    """Bias-free convolution, BatchNorm (eps 1e-3, as the Inception weights use), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride: int = 1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


def _check(block: str, out_channels: int, produced: int, stride: int, allowed_stride: int) -> None:
    if stride != allowed_stride:
        raise ValueError(f"{block} works at stride {allowed_stride} only, got stride={stride}")
    if produced != out_channels:
        raise ValueError(f"{block}: the branch widths add up to {produced} channels, but out_channels={out_channels}")


class MaxPoolBlock(Block):
    """A max-pool between GoogLeNet's modules (ceil mode, as torchvision's), channels unchanged.

    ``kernel_size`` must be ``stride`` or ``stride + 1``: with ceil mode the output is
    then exactly ``H/stride`` rounded (up for kernel = stride, down for stride + 1 on odd H).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2, kernel_size: int = 3):
        super().__init__(in_channels, out_channels, stride)
        if in_channels != out_channels:
            raise ValueError(f"a pooling block keeps the channels: in_channels={in_channels}, out_channels={out_channels}")
        if kernel_size not in (stride, stride + 1):
            raise ValueError(f"kernel_size must be stride or stride + 1 (got {kernel_size} for stride {stride})")
        self.pool = nn.MaxPool2d(kernel_size, stride=stride, ceil_mode=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(x)


def _reduce_then_3x3(in_channels: int, widths: tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(ConvBnRelu(in_channels, widths[0], 1), ConvBnRelu(*widths, 3, padding=1))


class GoogLeNetInception(Block):
    """GoogLeNet's module: 1x1 | 1x1 -> 3x3 | 1x1 -> "5x5" | 3x3 max-pool -> 1x1.

    The "5x5" branch uses a 3x3 kernel, as torchvision's GoogLeNet (and its weights) do.
    ``branch3x3`` and ``branch5x5`` give (reduce width, output width).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, *, branch1x1: int,
                 branch3x3: tuple[int, int], branch5x5: tuple[int, int], branch_pool: int):
        super().__init__(in_channels, out_channels, stride)
        _check("googlenet_inception", out_channels, branch1x1 + branch3x3[1] + branch5x5[1] + branch_pool, stride, 1)
        self.branch1 = ConvBnRelu(in_channels, branch1x1, 1)
        self.branch2 = _reduce_then_3x3(in_channels, branch3x3)
        self.branch3 = _reduce_then_3x3(in_channels, branch5x5)
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), ConvBnRelu(in_channels, branch_pool, 1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


def _avg_pool_3x3(x: Tensor) -> Tensor:
    return F.avg_pool2d(x, 3, stride=1, padding=1)


class _InceptionV3Module(Block):
    """Inception v3 modules keep torchvision's flat layer names (``branch5x5_1``,
    ``branch5x5_2``, ...); ``add_chain`` registers such a numbered sequence. Each
    module's ``forward`` calls its layers by name, which TorchScript can compile."""

    def add_chain(self, prefix: str, layers: list[nn.Module]) -> None:
        for i, layer in enumerate(layers, 1):
            self.add_module(f"{prefix}_{i}", layer)


class _PooledModule(_InceptionV3Module):
    """The stride-1 modules (A, C, E): a 1x1 branch, the module's own middle branches,
    and a 3x3 average-pool followed by a 1x1 conv, concatenated in that order."""

    def __init__(self, name: str, in_channels: int, out_channels: int, stride: int, branch1x1: int, middle: int, branch_pool: int):
        super().__init__(in_channels, out_channels, stride)
        _check(name, out_channels, branch1x1 + middle + branch_pool, stride, 1)
        self.branch1x1 = ConvBnRelu(in_channels, branch1x1, 1)
        self.branch_pool = ConvBnRelu(in_channels, branch_pool, 1)

    def middle(self, x: Tensor) -> list[Tensor]:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1x1(x)] + self.middle(x) + [self.branch_pool(_avg_pool_3x3(x))], 1)


def _double_3x3(in_channels: int, widths: tuple[int, int, int], last_stride: int) -> list[nn.Module]:
    """1x1 -> 3x3 -> 3x3, the last padded at stride 1 or unpadded at stride 2."""
    return [
        ConvBnRelu(in_channels, widths[0], 1),
        ConvBnRelu(widths[0], widths[1], 3, padding=1),
        ConvBnRelu(widths[1], widths[2], 3, stride=last_stride, padding=1 if last_stride == 1 else 0),
    ]


def _factorized_7x7(in_channels: int, widths: tuple[int, ...], first: str) -> list[nn.Module]:
    """1x1, then 1x7 and 7x1 convolutions in turn (starting with ``first``) through ``widths``."""
    shapes = {"1x7": ((1, 7), (0, 3)), "7x1": ((7, 1), (3, 0))}
    order = ("1x7", "7x1") if first == "1x7" else ("7x1", "1x7")
    layers = [ConvBnRelu(in_channels, widths[0], 1)]
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        kernel, padding = shapes[order[i % 2]]
        layers.append(ConvBnRelu(a, b, kernel, padding=padding))
    return layers


class InceptionA(_PooledModule):
    """Inception v3's 35x35 module: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg-pool -> 1x1."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, *, branch1x1: int,
                 branch5x5: tuple[int, int], branch3x3dbl: tuple[int, int, int], branch_pool: int):
        super().__init__("inception_a", in_channels, out_channels, stride, branch1x1, branch5x5[1] + branch3x3dbl[2], branch_pool)
        self.add_chain("branch5x5", [ConvBnRelu(in_channels, branch5x5[0], 1), ConvBnRelu(*branch5x5, 5, padding=2)])
        self.add_chain("branch3x3dbl", _double_3x3(in_channels, branch3x3dbl, last_stride=1))

    def middle(self, x: Tensor) -> list[Tensor]:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        return [b5, self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))]


class InceptionB(_InceptionV3Module):
    """Inception v3's 35 -> 17 reduction: 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | max-pool/2.

    The pooling branch passes all input channels through. Unpadded stride-2 layers
    give ``(H - 1) // 2``, so the block trims the border on even sizes.
    """

    trims_border = True

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2, *, branch3x3: int, branch3x3dbl: tuple[int, int, int]):
        super().__init__(in_channels, out_channels, stride)
        _check("inception_b", out_channels, branch3x3 + branch3x3dbl[2] + in_channels, stride, 2)
        self.branch3x3 = ConvBnRelu(in_channels, branch3x3, 3, stride=2)
        self.add_chain("branch3x3dbl", _double_3x3(in_channels, branch3x3dbl, last_stride=2))

    def forward(self, x: Tensor) -> Tensor:
        dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), dbl, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(_PooledModule):
    """Inception v3's 17x17 module, its 7x7 convolutions factorised into 1x7 and 7x1.

    Branches: 1x1 | 1x1 -> 1x7 -> 7x1 (``branch7x7``, three widths) | 1x1 -> 7x1 -> 1x7
    -> 7x1 -> 1x7 (``branch7x7dbl``, five widths) | avg-pool -> 1x1.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, *, branch1x1: int,
                 branch7x7: tuple[int, int, int], branch7x7dbl: tuple[int, int, int, int, int], branch_pool: int):
        super().__init__("inception_c", in_channels, out_channels, stride, branch1x1, branch7x7[-1] + branch7x7dbl[-1], branch_pool)
        self.add_chain("branch7x7", _factorized_7x7(in_channels, branch7x7, "1x7"))
        self.add_chain("branch7x7dbl", _factorized_7x7(in_channels, branch7x7dbl, "7x1"))

    def middle(self, x: Tensor) -> list[Tensor]:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        dbl = self.branch7x7dbl_3(self.branch7x7dbl_2(self.branch7x7dbl_1(x)))
        return [b7, self.branch7x7dbl_5(self.branch7x7dbl_4(dbl))]


class InceptionD(_InceptionV3Module):
    """Inception v3's 17 -> 8 reduction: 1x1 -> 3x3/2 | 1x1 -> 1x7 -> 7x1 -> 3x3/2 | max-pool/2.

    ``branch7x7x3`` gives the second branch's four widths; the pooling branch passes
    the input channels through. Trims the border on even sizes, like ``InceptionB``.
    """

    trims_border = True

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2, *, branch3x3: tuple[int, int], branch7x7x3: tuple[int, int, int, int]):
        super().__init__(in_channels, out_channels, stride)
        _check("inception_d", out_channels, branch3x3[1] + branch7x7x3[3] + in_channels, stride, 2)
        self.add_chain("branch3x3", [ConvBnRelu(in_channels, branch3x3[0], 1), ConvBnRelu(*branch3x3, 3, stride=2)])
        reduce = ConvBnRelu(branch7x7x3[2], branch7x7x3[3], 3, stride=2)
        self.add_chain("branch7x7x3", [*_factorized_7x7(in_channels, branch7x7x3[:3], "1x7"), reduce])

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(_PooledModule):
    """Inception v3's 8x8 module, whose 3x3 branches end in parallel 1x3 and 3x1 halves.

    ``branch3x3 = (reduce, width)`` and ``branch3x3dbl = (reduce, mid, width)``; each
    split branch contributes ``2 * width`` channels.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, *, branch1x1: int,
                 branch3x3: tuple[int, int], branch3x3dbl: tuple[int, int, int], branch_pool: int):
        middle = 2 * branch3x3[1] + 2 * branch3x3dbl[2]
        super().__init__("inception_e", in_channels, out_channels, stride, branch1x1, middle, branch_pool)
        self.branch3x3_1 = ConvBnRelu(in_channels, branch3x3[0], 1)
        self.branch3x3_2a = ConvBnRelu(*branch3x3, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBnRelu(*branch3x3, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBnRelu(in_channels, branch3x3dbl[0], 1)
        self.branch3x3dbl_2 = ConvBnRelu(*branch3x3dbl[:2], 3, padding=1)
        self.branch3x3dbl_3a = ConvBnRelu(*branch3x3dbl[1:], (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBnRelu(*branch3x3dbl[1:], (3, 1), padding=(1, 0))

    def middle(self, x: Tensor) -> list[Tensor]:
        b3 = self.branch3x3_1(x)
        b3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return [self.branch3x3_2a(b3), self.branch3x3_2b(b3), self.branch3x3dbl_3a(b3dbl), self.branch3x3dbl_3b(b3dbl)]
