"""The ResNet plugin: torchvision/timm parity, options, features and block swaps.

Build/forward/backward/head-reset/in_chans checks for every model come from the
generic ``testing.check_model`` run in test_models.py; this file checks what is
specific to the family. Runtime: about a minute on 2 cores.
"""

import pytest
import torch
from torch import nn

import registry_core
from registry_core import Block, InvalidOverrideError, hookimpl, testing

torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")

IMAGENET = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2",
]
CIFAR = ["resnet18_cifar", "resnet34_cifar"]
BASIC = {"resnet18", "resnet34", *CIFAR}


def torchvision_model(name, **kwargs):
    torch.manual_seed(0)
    return testing.perturb_batchnorm(torchvision.models.get_model(name, weights=None, **kwargs), seed=1)


def test_every_model_is_listed_with_its_plugin():
    listed = set(registry_core.list_models("resn*")) | set(registry_core.list_models("wide*"))
    assert listed == set(IMAGENET) | set(CIFAR)
    record = next(r for r in registry_core.list_plugins() if r.name == "resnet")
    assert (record.distribution, record.status) == ("registry-resnet", "ok")
    assert set(record.provided["model"]) == listed
    assert set(record.provided["converter"]) == {f"{s}/{name}" for s in ("torchvision", "timm") for name in IMAGENET}


@pytest.mark.parametrize("name", IMAGENET)
def test_size_and_cost_equal_torchvision(name):
    info = registry_core.model_info(name)
    with torch.device("meta"):
        reference = torchvision.models.get_model(name, weights=None)
    assert info["params"] == sum(p.numel() for p in reference.parameters())
    assert info["gflops"] == registry_core.count_flops(reference, (3, 224, 224)) / 1e9
    assert info["input_size"] == (3, 224, 224)
    assert (info["mean"], info["std"]) == (registry_core.IMAGENET_MEAN, registry_core.IMAGENET_STD)


@pytest.mark.parametrize("name", IMAGENET + CIFAR)
def test_features_only_channels_and_reductions(name):
    """On the meta device: shapes only (real features_only runs are in check_model)."""
    size = 32 if name in CIFAR else 64
    with torch.device("meta"):
        model = registry_core.create(name, features_only=True)
        maps = model(torch.empty(2, 3, size, size))
    expansion = 1 if name in BASIC else 4
    first = 1 if name in CIFAR else 4
    expected = [(c * expansion, first * 2**i) for i, c in enumerate((64, 128, 256, 512))]
    if name not in CIFAR:  # timm's level 0: the stem's activation before its pool
        expected = [(64, 2), *expected]
    assert [(f["channels"], f["reduction"]) for f in model.feature_info] == expected
    assert [(m.shape[1], size // m.shape[-1]) for m in maps] == expected


def test_resnets_run_on_one_pixel_as_torchvision_and_timm_do():
    """Every stride-2 layer is padded, so a 1x1 map stays 1x1: the minimum is 1 pixel."""
    assert {registry_core.model_info(name, flops=False)["min_input_size"] for name in IMAGENET + CIFAR} == {(3, 1, 1)}
    x = torch.randn(2, 3, 1, 1)
    with torch.no_grad():
        for model in (torchvision.models.resnet18(), timm.create_model("resnet18", pretrained=False), registry_core.create("resnet18")):
            assert model.eval()(x).shape == (2, 1000)
        assert registry_core.create("resnet18_cifar").eval()(x).shape == (2, 10)


@pytest.mark.parametrize("name", CIFAR)
def test_cifar_models_keep_32x32_resolution_in_the_stem(name):
    info = registry_core.model_info(name)
    assert (info["num_classes"], info["input_size"]) == (10, (3, 32, 32))
    model = registry_core.create(name)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert model.stem(torch.randn(1, 3, 32, 32)).shape == (1, 64, 32, 32)


@pytest.mark.parametrize("name", IMAGENET)
def test_torchvision_weights_give_the_same_outputs(name):
    assert testing.check_conversion("torchvision", name, torchvision_model(name), size=64, batch=1) <= 1e-5


@pytest.mark.parametrize("name", IMAGENET)
def test_timm_weights_give_the_same_outputs(name):
    torch.manual_seed(0)
    source = testing.perturb_batchnorm(timm.create_model(name, pretrained=False), seed=1)
    assert testing.check_conversion("timm", name, source, size=64, batch=1) <= 1e-5


def test_group_options_change_the_architecture_like_torchvision():
    """A ResNeXt with other groups equals torchvision's ResNet built with those options."""
    reference = torchvision_model("resnet50", groups=64, width_per_group=4)
    assert testing.check_conversion("torchvision", "resnext50_32x4d", reference, batch=1, groups=64, width_per_group=4) <= 1e-5
    with torch.device("meta"):
        model = registry_core.create("resnext50_32x4d", groups=64, width_per_group=4)
    assert model.stages[0][0].conv2.groups == 64
    assert model.create_kwargs == {"groups": 64, "width_per_group": 4}


def test_default_stages_carry_no_options_and_overrides_do():
    assert all(not stage.options for stage in registry_core.model_spec("resnet50").stages)
    wide = registry_core.model_spec("wide_resnet50_2").stages
    assert all(dict(stage.options) == {"width_per_group": 128} for stage in wide)
    with pytest.raises(InvalidOverrideError, match="groups"):
        registry_core.create("resnet18", groups=2)


@pytest.mark.parametrize(("name", "last_bn"), [("resnet18", "bn2"), ("resnet50", "bn3")])
def test_zero_init_last_starts_every_block_as_identity(name, last_bn):
    model = registry_core.create(name, zero_init_last=True)
    blocks = [block for stage in model.stages for block in stage]
    assert all(torch.count_nonzero(getattr(block, last_bn).weight) == 0 for block in blocks)
    default = registry_core.create(name)
    assert all(torch.count_nonzero(getattr(block, last_bn).weight) > 0 for stage in default.stages for block in stage)


def test_drop_rate_reaches_the_head():
    assert registry_core.create("resnet50", drop_rate=0.25).head.drop.p == 0.25


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_drop_path_rate_trains_as_timms(name):
    """Stochastic depth rising linearly over every block, on the residual branch before
    the addition: under one seed, the train-mode outputs equal timm's."""
    timm = pytest.importorskip("timm")
    theirs = testing.perturb_batchnorm(timm.create_model(name, drop_path_rate=0.3, pretrained=False))  # timm zeroes the last BN
    ours = registry_core.create(name, drop_path_rate=0.3)
    ours.load_state_dict(registry_core.get_converter("timm", name).to_ours(theirs.state_dict()))
    blocks = [block for stage in ours.stages for block in stage]
    assert [getattr(b.drop_path, "p", 0.0) for b in blocks] == pytest.approx([0.3 * k / (len(blocks) - 1) for k in range(len(blocks))])
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), theirs.eval()(x))
    torch.manual_seed(0)
    want = theirs.train()(x)
    torch.manual_seed(0)
    got = ours.train()(x)
    torch.testing.assert_close(got, want)
    torch.manual_seed(1)
    assert not torch.allclose(ours(x), want)  # other draws drop other branches
    assert registry_core.create(name).state_dict().keys() == ours.state_dict().keys()
    with pytest.raises(InvalidOverrideError, match="drop_path_rate"):
        registry_core.create(name, drop_path_rate=1.0)


def test_get_classifier_is_timms():
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        theirs, ours = timm.create_model("resnet18", pretrained=False), registry_core.create("resnet18")
    assert ours.get_classifier() is ours.head.fc
    assert type(ours.get_classifier()) is type(theirs.get_classifier()) and ours.get_classifier().out_features == 1000
    ours.reset_classifier(0)
    theirs.reset_classifier(0)
    assert type(ours.get_classifier()) is type(theirs.get_classifier()) is nn.Identity
    with pytest.raises(registry_core.SpecError, match="features_only"):
        registry_core.create("resnet18", features_only=True).get_classifier()


def test_bundled_block_swap_and_rejected_options():
    with torch.device("meta"):
        model = registry_core.create("resnet50", block="basic")
        assert model(torch.empty(1, 3, 64, 64)).shape == (1, 1000)
    assert {type(block).__name__ for stage in model.stages for block in stage} == {"BasicBlock"}
    with pytest.raises(InvalidOverrideError, match="groups"):
        registry_core.create("resnext50_32x4d", block="basic")


@pytest.mark.parametrize(
    ("name", "options"),
    [("basic", {}), ("bottleneck", {}), ("bottleneck", {"groups": 4, "width_per_group": 8, "zero_init_last": True})],
)
@pytest.mark.parametrize("stride", [1, 2])
def test_blocks_keep_the_contract(name, options, stride):
    testing.check_block(name, in_channels=16, out_channels=32, stride=stride, **options)


def test_bottleneck_inner_width_follows_torchvision():
    block = registry_core.create("wide_resnet50_2").stages[3][0]
    assert (block.conv1.out_channels, block.conv3.out_channels) == (1024, 2048)
    with pytest.raises(ValueError, match="no inner channels"):
        testing.check_block("bottleneck", in_channels=4, out_channels=8, width_per_group=1)


@pytest.mark.parametrize(("name", "size", "reduction"), [("resnet_stem", 64, 4), ("cifar_stem", 32, 1)])
def test_stems_keep_the_contract(name, size, reduction):
    assert testing.check_stem(name, size=size).reduction == reduction


class GatedBlock(Block):
    """A third party's block: a strided 1x1 convolution with a learned channel gate. It
    takes the bottleneck's options (as an SE bottleneck would) and uses ``groups``."""

    def __init__(self, in_channels, out_channels, stride=1, groups=1, width_per_group=64):
        super().__init__(in_channels, out_channels, stride)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride, groups=groups)
        self.gate = nn.Parameter(torch.zeros(out_channels, 1, 1))

    def forward(self, x):
        return self.conv(x) * torch.sigmoid(self.gate)


class GatedBlockPlugin:
    @hookimpl
    def register_blocks(self, register):
        register("gated", GatedBlock)


@pytest.fixture
def with_gated_block(fresh_host):
    from registry_resnet import plugin

    fresh_host(plugin, "resnet")
    record = fresh_host(GatedBlockPlugin(), "test-plugin")
    assert record.status == "ok" and record.provided == {"block": ["gated"]}


def test_a_third_party_block_drops_into_resnet50(with_gated_block):
    x = torch.randn(2, 3, 32, 32)
    model = registry_core.create("resnet50", block="gated")
    assert {type(block) for stage in model.stages for block in stage} == {GatedBlock}
    out = model(x)
    with torch.device("meta"):
        assert out.shape == registry_core.create("resnet50")(x.to("meta")).shape == (2, 1000)
    out.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    resnext = registry_core.create("resnext50_32x4d", block="gated")
    assert {block.conv.groups for stage in resnext.stages for block in stage} == {32}
