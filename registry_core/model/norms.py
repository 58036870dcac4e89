"""Norm blocks the core contributes (registered by ``plugins.core_plugin``), for a spec's
``norm`` or ``neck``: they keep channels, resolution and format."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .interfaces import TOKENS, Block


class TokenLayerNorm(Block):
    """LayerNorm over each token's channels (``layer_norm``): a token model's final norm,
    timm's ``norm`` (its weights are ``<module>.weight`` and ``<module>.bias``)."""

    input_format = output_format = TOKENS

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, eps: float = 1e-6):
        super().__init__(in_channels, out_channels, stride)
        if out_channels != in_channels or stride != 1:
            raise ValueError(f"a norm keeps channels and resolution: got {in_channels} -> {out_channels} channels, stride {stride}")
        self.eps = eps
        self.normalized_shape = [in_channels]
        self.weight = nn.Parameter(torch.ones(in_channels))
        self.bias = nn.Parameter(torch.zeros(in_channels))

    def init_weights(self) -> None:
        """Already weight 1, bias 0, as the core's default gives norms."""

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
