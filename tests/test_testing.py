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


def test_a_head_is_checked_inside_a_model_on_its_real_inputs_aux_heads_included(fresh_host):
    from components import make_plugin

    fresh_host(make_plugin(), "tiny-components")
    assert testing.check_in_model("head", "classifier", "tiny_aux") == 2  # the main head and the auxiliary one
    assert testing.check_in_model("block", "tiny_block", "tiny") == 3  # 8->16, 16->16 and 16->32/2: all distinct
    assert testing.models_using(TinyBlock) == ["tiny_mixed", "tiny", "tiny_aux"]  # smallest first


@pytest.mark.parametrize("init", ["pytorch", "zero_bias", "trunc_normal", "zeros"])
def test_the_classifier_head_normalises_on_request_and_starts_its_linear_as_asked(init):
    head = testing.check_head("classifier", norm="layer_norm", init=init, in_features=32)
    plain = testing.check_head("classifier", init=init)
    assert [k for k in plain.state_dict()] == []  # num_classes=0 after the kit's resets: no fc, and no norm
    assert [k for k in head.state_dict()] == ["norm.weight", "norm.bias"]
    head.reset(10)
    fc = head.fc
    assert (torch.count_nonzero(fc.bias) == 0) == (init != "pytorch")
    assert (torch.count_nonzero(fc.weight) == 0) == (init == "zeros")
    if init == "trunc_normal":
        assert 0.015 < fc.weight.std() < 0.025
    x = torch.randn(4, 32, 3, 3)
    expected = torch.nn.functional.layer_norm(x.mean((2, 3)), (32,), head.norm.weight, head.norm.bias, 1e-6)
    assert torch.allclose(head(x, pre_logits=True), expected, atol=1e-6)
    with pytest.raises(ValueError, match="init must be one of"):
        testing.check_head("classifier", init="xavier")
