"""Generic heads the core contributes (registered by ``plugins.core_plugin``).

Neither head knows an architecture: ``classifier`` is global pooling + dropout +
linear (ResNet-style); ``mlp`` pools to a fixed grid, flattens, and runs hidden linear
layers before the classifier (LeNet, AlexNet and VGG-style).
"""

from __future__ import annotations

from torch import Tensor, nn

from .interfaces import Head

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name](inplace=True) if name == "relu" else ACTIVATIONS[name]()


class ClassifierHead(Head):
    """Global average (or max) pooling, dropout, linear."""

    def __init__(self, in_features: int, num_classes: int, pool: str = "avg", drop_rate: float = 0.0):
        super().__init__(in_features, num_classes)
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = nn.AdaptiveAvgPool2d(1) if pool == "avg" else nn.AdaptiveMaxPool2d(1)
        self.drop = nn.Dropout(drop_rate)
        self.fc = self.make_classifier(in_features)

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.drop(self.pool(x).flatten(1))
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

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.pool(x).flatten(1)
        for layer in self.hidden:
            x = self.drop(x) if self.dropout_first else x
            x = self.act(layer(x))
            x = x if self.dropout_first else self.drop(x)
        return x if pre_logits else self.fc(x)
