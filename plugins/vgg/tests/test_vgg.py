"""The VGG plugin: torchvision/timm parity, size and cost, features, and the swappable block.

Build/forward/backward/head-reset/in_chans=1 checks for every model come from the
generic ``testing.check_model`` in test_models.py; this file checks the family's own
promises. A VGG has 130-144M parameters, so each test builds as few as it can.
Runtime: about 40 s of CPU; 2.5 min wall on 2 busy shared cores, mostly building the
ten parity pairs.
"""

import pytest
import torch
from torch import nn

import registry_core
from registry_core import Block, InputSizeError, InvalidOverrideError, cli, hookimpl, testing
from registry_core.model.compose import meta_device

torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")

NAMES = [f"vgg{depth}{bn}" for depth in (11, 13, 16, 19) for bn in ("", "_bn")]


def torchvision_model(name):
    torch.manual_seed(0)
    return testing.perturb_batchnorm(torchvision.models.get_model(name, weights=None), seed=1)


def converter(key):
    from registry_vgg.convert import converters

    return {c.key: c for c in converters()}[key]


def test_every_model_is_listed_with_its_plugin(capsys):
    assert registry_core.list_models("vgg*") == sorted(NAMES)
    assert cli.main(["list", "vgg*"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert sorted((row.split()[0], row.split()[-2]) for row in rows) == [(name, "registry-vgg") for name in sorted(NAMES)]


@pytest.mark.parametrize("name", NAMES)
def test_size_cost_and_input_equal_torchvision_and_timm(name):
    info = registry_core.model_info(name)
    with torch.device("meta"):
        references = [torchvision.models.get_model(name, weights=None), timm.create_model(name, pretrained=False)]
    for reference in references:
        assert info["params"] == sum(p.numel() for p in reference.parameters())
        assert info["gflops"] == registry_core.count_flops(reference, (3, 224, 224)) / 1e9
    timm_config = references[1].pretrained_cfg
    assert info["input_size"] == timm_config["input_size"] == (3, 224, 224)
    imagenet = (registry_core.IMAGENET_MEAN, registry_core.IMAGENET_STD)
    assert (info["mean"], info["std"]) == (timm_config["mean"], timm_config["std"]) == imagenet
    assert (info["interpolation"], info["crop_pct"]) == (timm_config["interpolation"], timm_config["crop_pct"])


def test_parameter_counts_from_the_issue():
    assert registry_core.model_info("vgg16")["params"] == 138_357_544
    assert registry_core.model_info("vgg19_bn")["params"] == 143_678_248


@pytest.mark.parametrize("name", NAMES)
def test_torchvision_weights_give_the_same_outputs(name):
    assert testing.check_conversion("torchvision", name, torchvision_model(name), size=64) <= 1e-5


def test_timm_converters_map_every_tensor_both_ways():
    """Every model's timm converter, on shapes alone (meta tensors, nothing allocated)."""
    for name in NAMES:
        timm_converter = converter(f"timm/{name}")
        with torch.device("meta"):
            source = timm.create_model(name, pretrained=False).state_dict()
            ours = registry_core.create(name).state_dict()
        converted = timm_converter.to_ours(source)
        assert {k: v.shape for k, v in converted.items()} == {k: v.shape for k, v in ours.items()}
        assert {k: v.shape for k, v in timm_converter.from_ours(converted).items()} == {k: v.shape for k, v in source.items()}


# timm runs its first head layer as a 7x7 convolution and adaptive-pools a smaller map
# *up* to 7x7 first, exactly as torchvision's adaptive pool does; so timm, torchvision
# and we agree for inputs up to 224x224 (maps up to 7x7). On larger inputs timm slides
# the 7x7 convolution and averages while torchvision and we pool down to 7x7: they differ.
# The feature layout is the same function as for torchvision (checked on all models
# above), so two models, one at full resolution, prove the head conversion.
@pytest.mark.parametrize(("name", "size", "batch"), [("vgg11", 224, 1), ("vgg16_bn", 64, 2)])
def test_timm_weights_give_the_same_outputs(name, size, batch):
    torch.manual_seed(0)
    source = testing.perturb_batchnorm(timm.create_model(name, pretrained=False), seed=1)
    assert testing.check_conversion("timm", name, source, size=size, batch=batch) <= 1e-5


def test_levels_are_the_maps_before_torchvisions_pools_and_the_last_pool():
    reference = torchvision_model("vgg11_bn").eval()
    ours = registry_core.create("vgg11_bn", features_only=True).eval()
    missing, unexpected = ours.load_state_dict(converter("torchvision/vgg11_bn").to_ours(reference.state_dict()), strict=False)
    assert not missing and {key.split(".")[0] for key in unexpected} == {"head"}
    x = torch.randn(2, 3, 64, 64)
    expected, y = [], x
    with torch.no_grad():
        for layer in reference.features:
            if isinstance(layer, nn.MaxPool2d):
                expected.append(y)
            y = layer(y)
        expected.append(y)
        got = ours(x)
    assert [(f["channels"], f["reduction"]) for f in ours.feature_info] == [(64, 1), (128, 2), (256, 4), (512, 8), (512, 16), (512, 32)]
    assert len(got) == len(expected) == 6
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(got, expected))


def test_only_bn_variants_carry_the_batch_norm_option():
    for name in NAMES:
        stages = registry_core.model_spec(name).stages
        expected = {"batch_norm": True} if name.endswith("_bn") else {}
        assert all(dict(stage.options) == expected for stage in stages)
        assert all([b.stride for b in stage.blocks][-1] == 2 and len(stage.block_names()) == 1 for stage in stages)


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_block_keeps_the_contract(stride, batch_norm):
    block = testing.check_block("vgg_conv", stride=stride, batch_norm=batch_norm)
    assert isinstance(block.bn, nn.BatchNorm2d) == batch_norm


def test_stem_passes_the_image_on_and_five_pools_take_32x32_to_1x1():
    features = registry_core.create("vgg11", in_chans=1, features_only=True)
    x = torch.randn(1, 1, 32, 32)
    assert features.stem(x) is x and (features.stem.out_channels, features.stem.reduction) == (1, 1)
    assert [fmap.shape[-1] for fmap in features(x)] == [32, 16, 8, 4, 2, 1]  # timm's levels: five pre-pool maps, the last pool's
    assert registry_core.model_info("vgg11")["min_input_size"] == (3, 32, 32)
    with pytest.raises(RuntimeError):
        features.forward_intermediates(torch.randn(1, 1, 31, 31))
    with pytest.raises(InputSizeError, match="at least 32x32"):
        features(torch.randn(1, 1, 31, 31))


def test_drop_rate_is_an_option_recorded_like_any_other():
    with meta_device():
        default, tuned = registry_core.create("vgg16"), registry_core.create("vgg16_bn", drop_rate=0.1)
    assert default.head.drop.p == 0.5 and "drop_rate" not in default.create_kwargs
    assert tuned.head.drop.p == 0.1 and tuned.create_kwargs["drop_rate"] == 0.1
    assert {converter(f"{source}/vgg16").create_kwargs.get("drop_rate") for source in ("torchvision", "timm")} == {None, 0.0}


def train_outputs(model, x, seed=3):
    torch.manual_seed(seed)  # the same dropout masks, drawn in the same order
    with torch.no_grad():
        return model.train()(x)


# In training mode the outputs agree only if dropout has the same rate and place (and,
# with batch norm, batch statistics are used alike): timm's default is no dropout,
# torchvision's 0.5; the converters build ours to match, and drop_rate moves both.
@pytest.mark.parametrize("source", ["timm", "torchvision"])
def test_converted_models_agree_in_training_mode(source):
    def build(**options):
        if source == "timm":
            return timm.create_model("vgg11_bn", pretrained=False, **options)
        return torchvision.models.get_model("vgg11_bn", weights=None, **options)

    def dropouts(model):
        return {name: module.p for name, module in model.named_modules() if isinstance(module, nn.Dropout)}

    torch.manual_seed(0)
    reference = build()
    theirs = converter(f"{source}/vgg11_bn")
    x = torch.randn(2, 3, 64, 64)
    for drop_rate in (None, 0.3):
        options = {} if drop_rate is None else {"drop_rate": drop_rate}
        for module in reference.modules():  # what building it with this dropout would give
            if isinstance(module, nn.Dropout) and drop_rate is not None:
                module.p = drop_rate
        with meta_device():  # the weights come from the reference: nothing to initialise
            ours = registry_core.create("vgg11_bn", **{**theirs.create_kwargs, **options})
        ours.load_state_dict(theirs.to_ours(reference.state_dict()), strict=True, assign=True)
        torch.testing.assert_close(train_outputs(ours, x), train_outputs(reference, x), rtol=1e-5, atol=1e-5)
        masks_differ = not torch.equal(train_outputs(ours, x), train_outputs(ours, x, seed=4))
        assert masks_differ == (ours.head.drop.p > 0)
    with torch.device("meta"):  # the library's own option sets the same dropouts
        assert dropouts(build(**{"drop_rate" if source == "timm" else "dropout": 0.3})) == dropouts(reference)


def test_vgg_block_drops_into_another_family():
    model = registry_core.create("lenet5", block="vgg_conv")
    assert [type(block).__name__ for stage in model.stages for block in stage] == ["VGGConvBlock"]
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)


class StridedConvBlock(Block):
    """A third party's block: one strided 3x3 convolution and a GELU."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride, 1)

    def forward(self, x):
        return nn.functional.gelu(self.conv(x))


class StridedConvPlugin:
    @hookimpl
    def register_blocks(self, register):
        register("strided_conv", StridedConvBlock)


def test_a_third_party_block_replaces_vggs_blocks(fresh_host):
    from registry_vgg import plugin

    fresh_host(plugin, "vgg")
    assert fresh_host(StridedConvPlugin()).status == "ok"
    model = registry_core.create("vgg11", block="strided_conv")
    assert {type(block) for stage in model.stages for block in stage} == {StridedConvBlock}
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 1000)
    out.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(InvalidOverrideError, match="batch_norm"):
        registry_core.create("vgg11_bn", block="strided_conv")
