"""The core's head for token stages (registered as ``token_classifier``): timm's ViT head.

It reads ``N x (P + L) x C`` tokens (``interfaces.py``: the core builds it with
``prefix_tokens=P``), pools them to one vector per image, optionally normalises that
vector, and classifies it. Pooling is timm's ``global_pool``: ``'token'`` takes the
first prefix token (the class token), ``'avg'`` and ``'max'`` pool the patch tokens,
``''`` (with no classes) returns the tokens unpooled. The final linear layer starts as
each library starts it (``init``), and ``reset`` builds the new one the same way.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..errors import InvalidOverrideError
from .interfaces import TOKENS, Head

TOKEN_POOLS = ("token", "avg", "max")
INITS = ("zeros", "trunc_normal", "pytorch")
"""``zeros``: weight and bias zero (torchvision's ViT); ``trunc_normal``: weight from a
normal of std 0.02 cut at two standard deviations, bias zero (timm's ViT); ``pytorch``:
``nn.Linear``'s own."""


class TokenClassifierHead(Head):
    """Token pooling, an optional LayerNorm on the pooled vector (timm's ``fc_norm``), dropout, linear."""

    input_format = TOKENS

    def __init__(self, in_features: int, num_classes: int, prefix_tokens: int = 0, pool: str = "token",
                 fc_norm: bool = False, drop_rate: float = 0.0, init: str = "zeros", eps: float = 1e-6):
        super().__init__(in_features, num_classes)
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        self.prefix_tokens = prefix_tokens
        problem = self._pool_problem(pool)
        if problem:
            raise ValueError(f"pool {problem}")
        self.pool = self.default_pool = pool
        self.init = init
        self.fc_norm: nn.Module = nn.LayerNorm(in_features, eps=eps) if fc_norm else nn.Identity()
        self.drop = nn.Dropout(drop_rate)
        self.fc = self.make_classifier(in_features)

    def _pool_problem(self, pool: str) -> str:
        if pool not in TOKEN_POOLS:
            return f"must be one of {', '.join(map(repr, TOKEN_POOLS))}, got {pool!r}"
        if pool == "token" and self.prefix_tokens < 1:
            return "'token' takes the class token, and these tokens have no prefix token: use 'avg' or 'max'"
        return ""

    def make_classifier(self, features: int) -> nn.Module:
        fc = super().make_classifier(features)
        if isinstance(fc, nn.Linear) and self.init != "pytorch":
            if self.init == "zeros":
                nn.init.zeros_(fc.weight)
            else:
                nn.init.trunc_normal_(fc.weight, std=0.02, a=-0.04, b=0.04)
            nn.init.zeros_(fc.bias)
        return fc

    def set_global_pool(self, global_pool: str) -> None:
        """timm's ``global_pool``: ``'token'``, ``'avg'``, ``'max'``, or ``''`` for the tokens unpooled."""
        problem = self._pool_problem(global_pool) if global_pool else ""
        if problem:
            raise InvalidOverrideError("global_pool", problem)
        self.unpooled = global_pool == ""
        self.pool = global_pool or self.pool

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        if not self.unpooled:
            if self.pool == "token":
                x = x[:, 0]
            elif self.pool == "avg":
                x = x[:, self.prefix_tokens:].mean(dim=1)
            else:
                x = x[:, self.prefix_tokens:].amax(dim=1)
        x = self.drop(self.fc_norm(x))
        return x if pre_logits or self.unpooled else self.fc(x)

