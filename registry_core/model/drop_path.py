"""Stochastic depth, shared by every family that drops residual branches (ResNet, ConvNeXt).

``DropPath(p)`` zeroes a whole sample's branch in training with probability ``p`` and
scales the kept ones by ``1 / (1 - p)``: one Bernoulli draw per sample, drawn as
torchvision's ``StochasticDepth(p, "row")`` and timm's ``DropPath`` draw it, so under
one seed the same samples are dropped. ``drop_path_rates`` gives each block its
probability, rising linearly over the whole network as timm's ResNet and ConvNeXt do.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class DropPath(nn.Module):
    """Stochastic depth on a residual branch (identity in eval mode or with ``p=0``)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"drop path probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        shape = [x.shape[0]] + [1] * (x.dim() - 1)
        mask = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
        if keep > 0.0:
            mask.div_(keep)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


def drop_path_rates(depths: tuple[int, ...], rate: float) -> list[list[float]]:
    """Per stage, each block's probability: ``rate * k / (blocks - 1)`` for the k-th block overall."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"drop_path_rate must be in [0, 1), got {rate}")
    total = sum(depths)
    rates = [rate * k / (total - 1) if total > 1 else 0.0 for k in range(total)]
    starts = [sum(depths[:i]) for i in range(len(depths))]
    return [rates[start:start + depth] for start, depth in zip(starts, depths)]
