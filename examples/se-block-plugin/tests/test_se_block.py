"""The SE plugin's own tests, run against the installed distribution with registry-core's conformance kit."""

import pytest
import torch
from registry_se_block.blocks import SqueezeExcite, se_bottleneck

from registry_core import create, list_models, testing

needs_resnet = pytest.mark.skipif("resnet50" not in list_models(), reason="needs registry-resnet (resnet50, resnext50_32x4d)")


@pytest.mark.parametrize("stride", [1, 2])
def test_block_keeps_the_contract(stride):
    testing.check_block("se_bottleneck", in_channels=32, out_channels=64, stride=stride)


def test_block_takes_resnext_stage_options():
    block = testing.check_block(se_bottleneck(), in_channels=64, out_channels=128, groups=8, width_per_group=4)
    assert block.conv2.groups == 8
    assert block.conv2.out_channels == int(128 / 4 * 4 / 64) * 8


def test_a_zero_se_reduction_is_refused_by_name():
    with pytest.raises(ValueError, match="se_reduction"):
        se_bottleneck()(16, 32, se_reduction=0)


def test_squeeze_excite_scales_each_channel_by_a_gate_in_0_1():
    torch.manual_seed(0)
    x = torch.rand(2, 32, 5, 5) + 0.1
    scale = SqueezeExcite(32, reduction=16)(x) / x
    per_channel = scale[:, :, :1, :1]
    assert torch.allclose(scale, per_channel.expand_as(scale))
    assert ((per_channel > 0) & (per_channel < 1)).all()
    assert per_channel.std() > 0


@needs_resnet
def test_se_resnet50_keeps_the_contract():
    testing.check_model("se_resnet50")


def structure(name, **kwargs):
    """A model built on the meta device: every shape, no memory or init time."""
    with torch.device("meta"):
        return create(name, **kwargs)


def param_count(model):
    return sum(p.numel() for p in model.parameters())


@needs_resnet
def test_se_resnet50_is_resnet50_with_se_blocks():
    ours = structure("se_resnet50").state_dict()
    swapped = structure("resnet50", block="se_bottleneck").state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in swapped.items()}
    assert any(".se.fc1." in k for k in ours)


@needs_resnet
@pytest.mark.parametrize(
    ("timm_name", "name", "kwargs"),
    [("seresnet50", "se_resnet50", {}), ("seresnext50_32x4d", "resnext50_32x4d", {"block": "se_bottleneck"})],
)
def test_parameter_count_matches_timm(timm_name, name, kwargs):
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        theirs = timm.create_model(timm_name, pretrained=False)
    assert param_count(structure(name, **kwargs)) == param_count(theirs)


@needs_resnet
def test_se_resnext50_trains():
    model = create("resnext50_32x4d", block="se_bottleneck", num_classes=10)
    model(torch.randn(2, 3, 32, 32)).logsumexp(1).mean().backward()
    assert all(p.grad is not None for p in model.parameters())


@needs_resnet
def test_se_reduction_is_a_model_option():
    default, halved = structure("se_resnet50"), structure("se_resnet50", se_reduction=8)
    assert halved.stages[0][0].se.fc1.out_channels == 2 * default.stages[0][0].se.fc1.out_channels


@needs_resnet
def test_timm_seresnet50_converts_with_equal_outputs():
    timm = pytest.importorskip("timm")
    source = testing.perturb_batchnorm(timm.create_model("seresnet50", pretrained=False))
    assert testing.check_conversion("timm", "se_resnet50", source, size=64) <= 1e-5
