"""Generic heads the core contributes (registered by ``plugins.core_plugin``).

Neither head knows an architecture: ``classifier`` is global pooling, an optional
LayerNorm, dropout and linear (ResNet-style, or ConvNeXt's with ``norm="layer_norm"``);
``mlp`` pools to a fixed grid, flattens, and runs hidden linear layers before the
classifier (LeNet, AlexNet and VGG-style). ``init`` starts the final linear layer as the
library whose weights the model follows starts it (``LINEAR_INITS``), and ``reset``
starts a new one the same way.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InvalidOverrideError
from .interfaces import Head

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name](inplace=True) if name == "relu" else ACTIVATIONS[name]()


POOLS = {"avg": nn.AdaptiveAvgPool2d, "max": nn.AdaptiveMaxPool2d}

LINEAR_INITS = ("pytorch", "zero_bias", "trunc_normal", "zeros")
"""How a head starts its final linear layer: ``pytorch`` as ``nn.Linear`` does (torchvision's
ResNet); ``zero_bias`` the same weight with a zero bias (torchvision's DenseNet);
``trunc_normal`` a weight from a normal of std 0.02 truncated to [-2, 2] with a zero bias
(torchvision's and timm's ConvNeXt); ``zeros`` weight and bias zero (torchvision's ViT)."""


def init_linear(layer: nn.Module, init: str) -> None:
    """Start ``layer`` (a classifier: ``nn.Linear``, or ``nn.Identity`` without classes) by ``init``."""
    if init not in LINEAR_INITS:
        raise ValueError(f"init must be one of {', '.join(LINEAR_INITS)}, got {init!r}")
    if not isinstance(layer, nn.Linear) or init == "pytorch":
        return
    if init == "trunc_normal":
        nn.init.trunc_normal_(layer.weight, std=0.02)
    elif init == "zeros":
        nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels (dimension 1) of an ``N x C x ...`` tensor: a map, or
    pooled ``N x C`` features. Its parameters are ``weight`` and ``bias``, as in
    torchvision's and timm's ``LayerNorm2d``."""

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x.movedim(1, -1), self.normalized_shape, self.weight, self.bias, self.eps).movedim(-1, 1)


NORMS = ("", "layer_norm")


class ClassifierHead(Head):
    """Global average (or max) pooling, an optional norm, dropout, linear.

    ``norm="layer_norm"`` normalises the pooled features over their channels (``eps``),
    as ConvNeXt's head does (torchvision's ``classifier = [LayerNorm2d, Flatten, Linear]``,
    timm's ``NormMlpClassifierHead``); left unpooled (``global_pool=''``), the map is
    normalised as timm's is. Without a norm the head has no ``norm`` parameters, so a
    ResNet's state dict is what it always was.
    """

    def __init__(self, in_features: int, num_classes: int, pool: str = "avg", drop_rate: float = 0.0,
                 norm: str = "", init: str = "pytorch", eps: float = 1e-6):
        super().__init__(in_features, num_classes)
        if pool not in POOLS:
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        if norm not in NORMS:
            raise ValueError(f"norm must be '' or 'layer_norm', got {norm!r}")
        if init not in LINEAR_INITS:
            raise ValueError(f"init must be one of {', '.join(LINEAR_INITS)}, got {init!r}")
        self.init = init
        self.pool: nn.Module = POOLS[pool](1)
        self.norm: nn.Module = LayerNorm2d(in_features, eps=eps) if norm else nn.Identity()
        self.drop = nn.Dropout(drop_rate)
        self.fc = self.make_classifier(in_features)

    def make_classifier(self, features: int) -> nn.Module:
        fc = super().make_classifier(features)
        init_linear(fc, self.init)
        return fc

    def set_global_pool(self, global_pool: str) -> None:
        if global_pool not in ("", *POOLS):
            raise InvalidOverrideError("global_pool", f"must be 'avg', 'max' or '', got {global_pool!r}")
        self.unpooled = global_pool == ""
        self.pool = nn.Identity() if self.unpooled else POOLS[global_pool](1)

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.norm(self.pool(x))
        if not self.unpooled:
            x = x.flatten(1)
        x = self.drop(x)
        return x if pre_logits else self.fc(x)


class MLPHead(Head):
    """Adaptive pooling to ``pool_size``, flatten, hidden linear layers, classifier.

    ``dropout`` sits after each hidden layer (VGG) or, with ``dropout_first=True``,
    before each hidden layer (AlexNet).
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: tuple[int, ...] = (),
        pool_size: int = 1,
        act: str = "relu",
        drop_rate: float = 0.0,
        dropout_first: bool = False,
    ):
        super().__init__(in_features, num_classes)
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        widths = [in_features * pool_size * pool_size, *hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))
        self.act = _activation(act)
        self.drop = nn.Dropout(drop_rate)
        self.dropout_first = dropout_first
        self.fc = self.make_classifier(widths[-1])

    def set_global_pool(self, global_pool: str) -> None:
        """``''`` returns the incoming map (pooling and hidden layers skipped); ``'avg'``
        restores the pooling to ``pool_size`` the hidden layers were built for."""
        if global_pool not in ("", "avg"):
            raise InvalidOverrideError("global_pool", f"the mlp head pools to its grid by average: '' or 'avg', got {global_pool!r}")
        self.unpooled = global_pool == ""

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        if self.unpooled:
            return x
        x = self.pool(x).flatten(1)
        for layer in self.hidden:
            x = self.drop(x) if self.dropout_first else x
            x = self.act(layer(x))
            x = x if self.dropout_first else self.drop(x)
        return x if pre_logits else self.fc(x)
