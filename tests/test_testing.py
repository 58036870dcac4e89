"""The conformance kit accepts good components and catches broken ones."""

import pytest
import torch
from components import TinyBlock, TinyStem
from torch import nn

from registry_core import Block, ConformanceError, Head, testing


def test_good_components_pass():
    testing.check_block(TinyBlock, stride=2)
    testing.check_stem(TinyStem)
    testing.check_head("classifier")
    testing.check_head("mlp", hidden=(16,), pool_size=2)


class WrongStride(Block):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride)
        self.conv = nn.Conv2d(in_channels, out_channels, 1)  # ignores stride

    def forward(self, x):
        return self.conv(x)


class DeadParameter(TinyBlock):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.unused = nn.Linear(2, 2)


class Noisy(TinyBlock):
    def forward(self, x):
        return super().forward(x) + torch.randn(1)


class NoReset(Head):
    def __init__(self, in_features, num_classes):
        super().__init__(in_features, num_classes)
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, x, pre_logits=False):
        return self.fc(x.mean((2, 3)))


@pytest.mark.parametrize(
    "check, match",
    [
        (lambda: testing.check_block(WrongStride, stride=2), "stride contract"),
        (lambda: testing.check_block(DeadParameter), "no gradient reached unused"),
        (lambda: testing.check_block(Noisy), "eval passes"),
        (lambda: testing.check_head(NoReset), "reset"),
    ],
)
def test_broken_components_are_caught(check, match):
    with pytest.raises((ConformanceError, NotImplementedError), match=match):
        check()


def test_conformance_error_is_an_assertion_error():
    assert issubclass(ConformanceError, AssertionError)


class PoolBlock(Block):
    def __init__(self, in_channels, out_channels, stride=2):
        super().__init__(in_channels, out_channels, stride)
        if in_channels != out_channels:
            raise ValueError("a pooling block keeps the channel count")
        self.pool = nn.MaxPool2d(stride)

    def forward(self, x):
        return self.pool(x)


def test_parameter_free_block_passes():
    testing.check_block(PoolBlock, in_channels=8, out_channels=8, stride=2)
