"""The AlexNet plugin: torchvision parity, size and cost, features, dropout placement,
its stem and block.

Build/forward/backward/head-reset/in_chans=1 checks come from the generic
``testing.check_model`` in test_models.py. Runtime: about 10 s of CPU; 30 s wall on 2 busy
shared cores.
"""

import pytest
import torch

import registry_core
from registry_core import InputSizeError, InvalidOverrideError, cli, testing
from registry_core.model.compose import meta_device

torchvision = pytest.importorskip("torchvision")


@pytest.fixture(scope="module")
def pair():
    """torchvision's AlexNet and ours holding the same weights, through our converter."""
    from registry_alexnet.convert import TORCHVISION

    torch.manual_seed(0)
    reference = torchvision.models.alexnet(weights=None)
    ours = registry_core.create("alexnet")
    ours.load_state_dict(TORCHVISION.to_ours(reference.state_dict()), strict=True)
    return reference, ours


def test_listed_with_its_plugin(capsys):
    assert registry_core.list_models("alex*") == ["alexnet"]
    assert cli.main(["list", "alexnet"]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert (row[0], row[-2]) == ("alexnet", "registry-alexnet")


def test_size_and_cost_equal_torchvision():
    info = registry_core.model_info("alexnet")
    with torch.device("meta"):
        reference = torchvision.models.alexnet(weights=None)
    assert info["params"] == sum(p.numel() for p in reference.parameters()) == 61_100_840
    assert info["gflops"] == registry_core.count_flops(reference, (3, 224, 224)) / 1e9
    assert info["input_size"] == (3, 224, 224)
    assert (info["mean"], info["std"]) == (registry_core.IMAGENET_MEAN, registry_core.IMAGENET_STD)


@pytest.mark.parametrize("size", [64, 224])
def test_torchvision_weights_give_the_same_outputs(size):
    torch.manual_seed(0)
    source = torchvision.models.alexnet(weights=None)
    assert testing.check_conversion("torchvision", "alexnet", source, size=size) <= 1e-5


# torchvision's ``features`` up to the stem's pool and each stage's closing pool
TORCHVISION_ENDS = {"stem": 3, "stages.0": 6, "stages.1": 13}


def test_stem_and_stages_end_where_torchvision_pools(pair):
    reference, ours = pair
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = [reference.features[:end].eval()(x) for end in TORCHVISION_ENDS.values()]
        got = [ours.eval().stem(x), *ours.forward_intermediates(x, intermediates_only=True)]
    assert [info["module"] for info in ours.feature_info] == list(TORCHVISION_ENDS)[1:]
    assert [(f["channels"], f["reduction"]) for f in ours.feature_info] == [(192, 16), (256, 32)]
    assert [tuple(t.shape[1:]) for t in got] == [(64, 27, 27), (192, 13, 13), (256, 6, 6)]
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(got, expected))


def test_dropout_comes_before_each_hidden_layer_like_torchvision(pair):
    """In training mode the same seed drops the same units only if the layer order matches."""
    reference, ours = pair
    reference.train()
    ours.train()
    x = torch.randn(2, 3, 64, 64)
    outputs = []
    for model in (reference, ours):
        torch.manual_seed(3)
        with torch.no_grad():
            outputs.append(model(x))
    assert ours.head.dropout_first and ours.head.drop.p == 0.5
    assert torch.allclose(*outputs, atol=1e-5)


@pytest.mark.parametrize("drop_rate", [0.0, 0.2])
def test_drop_rate_is_torchvisions_dropout(drop_rate):
    """Built with the same rate, the two drop the same units in training mode."""
    from registry_alexnet.convert import TORCHVISION

    reference = torchvision.models.alexnet(weights=None, dropout=drop_rate)
    with meta_device():
        ours = registry_core.create("alexnet", drop_rate=drop_rate)
    ours.load_state_dict(TORCHVISION.to_ours(reference.state_dict()), strict=True, assign=True)
    assert ours.head.drop.p == drop_rate and ours.create_kwargs == {"drop_rate": drop_rate}
    x = torch.randn(2, 3, 64, 64)
    outputs = []
    for model in (reference, ours):
        torch.manual_seed(3)
        with torch.no_grad():
            outputs.append(model.train()(x))
    torch.testing.assert_close(*outputs, rtol=1e-5, atol=1e-5)


def test_smallest_input_is_63():
    features = registry_core.create("alexnet", features_only=True)
    assert registry_core.model_info("alexnet")["min_input_size"] == (3, 63, 63)
    assert features(torch.randn(1, 3, 63, 63))[-1].shape == (1, 256, 1, 1)
    with pytest.raises(RuntimeError):
        features.forward_intermediates(torch.randn(1, 3, 62, 62))
    with pytest.raises(InputSizeError, match="at least 63x63"):
        features(torch.randn(1, 3, 62, 62))


def test_stem_keeps_the_contract():
    stem = testing.check_stem("alexnet_stem", size=224)
    assert stem(torch.randn(1, 3, 224, 224)).shape == (1, 64, 27, 27)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernel_size", [3, 5])
def test_block_keeps_the_contract(stride, kernel_size):
    block = testing.check_block("alexnet_conv", stride=stride, size=13, kernel_size=kernel_size)
    assert block(torch.randn(1, 16, 13, 13)).shape[-1] == (6 if stride == 2 else 13)


def test_block_rejects_other_strides():
    with pytest.raises(ValueError, match="stride"):
        testing.check_block("alexnet_conv", stride=3)


def test_block_drops_into_another_family_and_swaps_are_checked():
    model = registry_core.create("lenet5", block="alexnet_conv")
    assert [type(block).__name__ for stage in model.stages for block in stage] == ["AlexNetConvBlock"]
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)
    with pytest.raises(InvalidOverrideError, match="kernel_size"):
        registry_core.create("alexnet", block="lenet_conv")
