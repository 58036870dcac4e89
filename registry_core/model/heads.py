"""Generic heads the core contributes (registered by ``plugins.core_plugin``).

Neither head knows an architecture: ``classifier`` is global pooling + dropout +
linear (ResNet-style); ``mlp`` pools to a fixed grid, flattens, and runs hidden linear
layers before the classifier (LeNet, AlexNet and VGG-style).
"""

from __future__ import annotations

from torch import Tensor, nn

from ..errors import InvalidOverrideError
from .interfaces import Head

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name](inplace=True) if name == "relu" else ACTIVATIONS[name]()


POOLS = {"avg": nn.AdaptiveAvgPool2d, "max": nn.AdaptiveMaxPool2d}


class ClassifierHead(Head):
    """Global average (or max) pooling, dropout, linear."""

    def __init__(self, in_features: int, num_classes: int, pool: str = "avg", drop_rate: float = 0.0):
        super().__init__(in_features, num_classes)
        if pool not in POOLS:
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool: nn.Module = POOLS[pool](1)
        self.drop = nn.Dropout(drop_rate)
        self.fc = self.make_classifier(in_features)

    def set_global_pool(self, global_pool: str) -> None:
        if global_pool not in ("", *POOLS):
            raise InvalidOverrideError("global_pool", f"must be 'avg', 'max' or '', got {global_pool!r}")
        self.unpooled = global_pool == ""
        self.pool = nn.Identity() if self.unpooled else POOLS[global_pool](1)

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.pool(x)
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
