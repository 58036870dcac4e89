"""The Inception plugin: GoogLeNet and Inception v3, their modules, aux heads and converters.

Parity sources get perturbed BatchNorm affine parameters and then running statistics
measured on random input, so eval activations stay of order one through the whole
depth: with default-initialised statistics they shrink layer by layer and a wrong
input transform would change the logits by less than the 1e-5 tolerance.
"""

import pytest
import torch
import torch.nn.functional as F
from registry_inception.blocks import GoogLeNetInception, InceptionA, InceptionB, InceptionC, InceptionD, InceptionE, MaxPoolBlock
from registry_inception.convert import CONVERTERS
from registry_inception.heads import GoogLeNetAuxHead, InceptionV3AuxHead
from registry_inception.stems import GoogLeNetStem, InceptionV3Stem

import registry_core
from registry_core import AuxLogits, ConformanceError, classification_loss, count_flops, create, model_info, model_spec, testing

torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")

MODELS = ("googlenet", "inception_v3")
TORCHVISION_BUILDERS = {"googlenet": torchvision.models.googlenet, "inception_v3": torchvision.models.inception_v3}
SMALL = {"googlenet": 64, "inception_v3": 75}
CONVERTER = {converter.key: converter for converter in CONVERTERS}


def torchvision_model(name, **kwargs):
    """Built as torchvision builds it for its pretrained weights, with random weights."""
    return TORCHVISION_BUILDERS[name](**{"aux_logits": True, "transform_input": True, "init_weights": False, **kwargs})


def calibrated(model, size, seed=0):
    """Perturbed BN affine parameters, running statistics measured on random input."""
    testing.perturb_batchnorm(model, seed)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    model.eval()
    for norm in norms:
        norm.momentum = None  # a cumulative average: one batch sets the statistics
        norm.train()
    with torch.no_grad():
        model(torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(seed)))
    for norm in norms:
        norm.momentum = 0.1
    return model.eval()


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_models_listed_with_their_plugin():
    assert set(MODELS) <= set(registry_core.list_models("*"))
    for name in MODELS:
        info = model_info(name)
        assert (info["plugin"], info["distribution"], info["family"]) == ("inception", "registry-inception", "inception")


@pytest.mark.parametrize("name", MODELS)
def test_family_contract(name):
    testing.check_model(name)


@pytest.mark.parametrize("name", MODELS)
def test_parameters_and_flops_match_torchvision(name):
    info = model_info(name)
    source = torchvision_model(name, transform_input=False)
    assert info["params"] == n_params(source)
    assert n_params(create(name, aux_logits=False)) == n_params(torchvision_model(name, aux_logits=False))
    assert info["gflops"] == pytest.approx(count_flops(source, info["input_size"]) / 1e9, rel=1e-12)


def test_stems_keep_the_contract():
    testing.check_stem(GoogLeNetStem, size=64)
    testing.check_stem(GoogLeNetStem, size=64, transform_input=True)
    testing.check_stem(InceptionV3Stem, size=299, batch=1)
    with pytest.raises(ValueError, match="in_chans=3"):
        GoogLeNetStem(1, transform_input=True)
    with pytest.raises(ValueError, match="in_chans=3"):
        create("inception_v3", transform_input=True, in_chans=1)


def test_transform_input_takes_imagenet_normalised_input():
    plain, transforming = GoogLeNetStem(3), GoogLeNetStem(3, transform_input=True)
    transforming.load_state_dict(plain.state_dict())
    image = torch.rand(2, 3, 32, 32)
    mean, std = torch.tensor(registry_core.IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(registry_core.IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = plain.eval()((image - 0.5) / 0.5)
        got = transforming.eval()((image - mean) / std)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_normalisation_follows_transform_input(name):
    assert model_info(name)["mean"] == model_info(name)["std"] == (0.5, 0.5, 0.5)
    meta = model_spec(name, transform_input=True).meta
    assert (meta.mean, meta.std) == (registry_core.IMAGENET_MEAN, registry_core.IMAGENET_STD)


GOOGLENET_3A = {"branch1x1": 8, "branch3x3": (4, 8), "branch5x5": (2, 4), "branch_pool": 4}
V3_BLOCKS = [
    (InceptionA, 1, {"branch1x1": 4, "branch5x5": (3, 4), "branch3x3dbl": (4, 6, 6), "branch_pool": 2}, 16),
    (InceptionB, 2, {"branch3x3": 6, "branch3x3dbl": (4, 6, 6)}, 6 + 6 + 16),
    (InceptionC, 1, {"branch1x1": 4, "branch7x7": (3, 3, 4), "branch7x7dbl": (3, 3, 3, 3, 4), "branch_pool": 4}, 16),
    (InceptionD, 2, {"branch3x3": (4, 6), "branch7x7x3": (4, 4, 4, 6)}, 6 + 6 + 16),
    (InceptionE, 1, {"branch1x1": 4, "branch3x3": (4, 3), "branch3x3dbl": (4, 4, 3), "branch_pool": 2}, 18),
]


@pytest.mark.parametrize("size", [15, 16])
def test_blocks_keep_the_contract(size):
    testing.check_block(GoogLeNetInception, in_channels=16, out_channels=24, size=size, **GOOGLENET_3A)
    for cls, stride, options, out in V3_BLOCKS:
        testing.check_block(cls, in_channels=16, out_channels=out, stride=stride, size=size, **options)


@pytest.mark.parametrize("kernel_size", [2, 3])
def test_pool_block_halves_the_map(kernel_size):
    block = MaxPoolBlock(8, 8, stride=2, kernel_size=kernel_size)
    for size in (7, 14, 15, 28):
        out = block(torch.randn(1, 8, size, size + 1))
        assert out.shape[1] == 8 and out.shape[2] in (size // 2, -(-size // 2)) and out.shape[3] in ((size + 1) // 2, -(-(size + 1) // 2))


def test_branch_widths_must_add_up_to_out_channels():
    with pytest.raises(ValueError, match="add up to 24 channels"):
        GoogLeNetInception(16, 32, **GOOGLENET_3A)
    for cls, stride, options, out in V3_BLOCKS:
        with pytest.raises(ValueError, match="add up to"):
            cls(16, out + 1, stride, **options)
        with pytest.raises(ValueError, match="stride"):
            cls(16, out, 3 - stride, **options)
    with pytest.raises(ValueError, match="keeps the channels"):
        MaxPoolBlock(8, 16)
    with pytest.raises(ValueError, match="kernel_size"):
        MaxPoolBlock(8, 8, stride=2, kernel_size=5)


def test_widths_come_from_the_spec():
    stages = model_spec("inception_v3").stages
    c7 = [block.options["branch7x7"][0] for block in stages[1].blocks[1:]]
    assert c7 == [128, 160, 160, 192]
    model = create("inception_v3", features_only=True)
    assert [m.branch7x7_1.conv.out_channels for m in list(model.stages[1])[1:]] == c7
    assert [info["name"] for info in model.feature_info] == ["stem.conv2b", "stem.conv4a", "mixed5", "mixed6", "mixed7"]
    assert [info["reduction"] for info in model.feature_info] == [2, 4, 8, 16, 32]  # timm's levels
    assert [info["reduction"] for info in create("googlenet", features_only=True).feature_info] == [8, 16, 16, 16, 32]


def test_aux_heads_keep_the_contract():
    testing.check_head(GoogLeNetAuxHead, in_features=16, size=14)
    testing.check_head(InceptionV3AuxHead, in_features=16, size=17)
    testing.check_head(InceptionV3AuxHead, in_features=16, size=3)


@pytest.mark.parametrize("size", [17, 20])
def test_inception_v3_aux_head_is_torchvisions_at_full_size(size):
    from torchvision.models.inception import InceptionAux

    source = testing.perturb_batchnorm(InceptionAux(32, 10)).eval()
    ours = InceptionV3AuxHead(32, 10).eval()
    ours.load_state_dict(source.state_dict())
    x = torch.randn(2, 32, size, size)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), source(x), atol=1e-6, rtol=0)


def test_googlenet_training_outputs_match_torchvision():
    source = torchvision_model("googlenet")
    ours = create("googlenet", transform_input=True)
    ours.load_state_dict(CONVERTER["torchvision/googlenet"].to_ours(source.state_dict()))
    x, target = torch.randn(2, 3, 64, 64), torch.tensor([1, 7])
    torch.manual_seed(0)
    expected = source.train()(x)
    torch.manual_seed(0)  # the same dropout masks, drawn in the same order
    got = ours.train()(x)
    assert isinstance(got, AuxLogits) and got.weights == (0.3, 0.3)
    torch.testing.assert_close(got.logits, expected.logits)
    torch.testing.assert_close(got.aux, (expected.aux_logits1, expected.aux_logits2))
    # torchvision's GoogLeNetOutputs(logits, aux_logits2, aux_logits1): attributes and unpacking
    torch.testing.assert_close((got.aux_logits1, got.aux_logits2), (expected.aux_logits1, expected.aux_logits2))
    assert len(got) == len(expected) == 3
    for ours_part, theirs_part in zip(got, expected):
        torch.testing.assert_close(ours_part, theirs_part)
    loss = F.cross_entropy(expected.logits, target) + 0.3 * F.cross_entropy(expected.aux_logits1, target) + 0.3 * F.cross_entropy(expected.aux_logits2, target)
    torch.testing.assert_close(classification_loss(got, target), loss)
    with torch.no_grad():
        assert isinstance(ours.eval()(x), torch.Tensor)


def test_inception_v3_training_outputs_match_torchvision():
    source = torchvision_model("inception_v3")
    ours = create("inception_v3", transform_input=True)
    ours.load_state_dict(CONVERTER["torchvision/inception_v3"].to_ours(source.state_dict()))
    x = torch.randn(2, 3, 299, 299)  # torchvision's aux head runs a 5x5 convolution on a 5x5 map: 299 pixels
    torch.manual_seed(0)
    expected = source.train()(x)
    torch.manual_seed(0)
    got = ours.train()(x)
    assert type(expected).__name__ == "InceptionOutputs" and len(got) == len(expected) == 2
    torch.testing.assert_close((got.logits, got.aux_logits), (expected.logits, expected.aux_logits))
    for ours_part, theirs_part in zip(got, expected):
        torch.testing.assert_close(ours_part, theirs_part)


def test_inception_v3_trains_with_its_aux_head_at_the_minimum_size():
    model = create("inception_v3", num_classes=4).train()
    out = model(torch.randn(2, 3, 75, 75))
    assert isinstance(out, AuxLogits) and out.weights == (0.4,)
    assert out.logits.shape == out.aux[0].shape == (2, 4)
    logits, aux = out  # torchvision's InceptionOutputs(logits, aux_logits)
    assert logits is out.logits and aux is out.aux_logits is out.aux[0]
    classification_loss(out, torch.tensor([0, 3])).backward()
    assert model.aux_heads[0].conv1.conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", MODELS)
def test_aux_logits_false_removes_the_heads_and_is_recorded(name):
    model = create(name, aux_logits=False)
    assert len(model.aux_heads) == 0 and model.create_kwargs["aux_logits"] is False
    assert not any(key.startswith("aux_heads.") for key in model.state_dict())
    out = model.train()(torch.randn(2, 3, SMALL[name], SMALL[name]))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 1000)


def test_converters_build_models_that_behave_like_their_source():
    for key, transform, mean, aux in (
        ("torchvision/googlenet", True, registry_core.IMAGENET_MEAN, 2),
        ("torchvision/inception_v3", True, registry_core.IMAGENET_MEAN, 1),
        ("timm/inception_v3", False, (0.5, 0.5, 0.5), 0),
    ):
        converter = CONVERTER[key]
        model = create(converter.model, **converter.create_kwargs)
        assert isinstance(model.stem.transform, torch.nn.Identity) is not transform
        assert (model.meta.mean, len(model.aux_heads)) == (mean, aux)
        assert model.create_kwargs == dict(converter.create_kwargs)


def test_torchvision_googlenet_parity():
    source = calibrated(torchvision_model("googlenet"), 64)
    assert testing.check_conversion("torchvision", "googlenet", source, size=64) <= 1e-5
    with pytest.raises(ConformanceError, match="outputs differ"):
        testing.check_conversion("torchvision", "googlenet", source, size=64, transform_input=False)


def test_torchvision_inception_v3_parity_at_299():
    source = calibrated(torchvision_model("inception_v3"), 75)
    assert testing.check_conversion("torchvision", "inception_v3", source, size=299, batch=1) <= 1e-5


def test_timm_inception_v3_parity():
    source = calibrated(timm.create_model("inception_v3"), 75)
    assert testing.check_conversion("timm", "inception_v3", source, size=75) <= 1e-5


def test_parameter_counts_with_and_without_aux_heads_match_both_libraries():
    """torchvision's metadata counts googlenet without its aux heads and inception_v3
    with its one; timm's inception_v3 has none. ``model_info`` gives both counts."""
    from torchvision.models import GoogLeNet_Weights, Inception_V3_Weights

    googlenet, v3 = model_info("googlenet", flops=False), model_info("inception_v3", flops=False)
    assert (googlenet["params"], googlenet["params_inference"]) == (13_004_888, 6_624_904)
    assert (v3["params"], v3["params_inference"]) == (27_161_264, 23_834_568)
    assert GoogLeNet_Weights.DEFAULT.meta["num_params"] == googlenet["params_inference"]
    assert Inception_V3_Weights.DEFAULT.meta["num_params"] == v3["params"]
    with torch.device("meta"):
        assert n_params(timm.create_model("inception_v3", pretrained=False)) == v3["params_inference"]


@pytest.mark.parametrize("name", MODELS)
def test_a_torchvision_file_with_other_input_channels_is_our_error(tmp_path, name):
    """torchvision's weights come with transform_input=True, which only RGB input can use."""
    checkpoint, out = tmp_path / "theirs.pth", tmp_path / "ours.safetensors"
    ours = create(name, **CONVERTER[f"torchvision/{name}"].create_kwargs)  # initialised: a file of finite numbers
    torch.save(CONVERTER[f"torchvision/{name}"].from_ours(ours.state_dict()), checkpoint)
    registry_core.convert_from("torchvision", name, checkpoint, out, verify=False)
    with pytest.raises(registry_core.InvalidOverrideError, match="in_chans=3, got 1; pass transform_input=False"):
        create(name, weights=out, in_chans=1)
    with pytest.warns(UserWarning, match="stem.conv1a?.conv.weight adapted from 3 to 1 input channels"):
        grey = create(name, weights=out, in_chans=1, transform_input=False)
    assert grey.meta.input_size[0] == 1 and isinstance(grey.stem.transform, torch.nn.Identity)


@pytest.mark.parametrize(
    "source, name, build, transform, aux",
    [
        ("torchvision", "googlenet", lambda: torchvision_model("googlenet"), True, 2),
        ("timm", "inception_v3", lambda: timm.create_model("inception_v3"), False, 0),
    ],
    ids=["torchvision-googlenet", "timm-inception_v3"],
)
def test_converted_file_rebuilds_the_matching_model(tmp_path, source, name, build, transform, aux):
    from registry_core.cli import main

    checkpoint, out = tmp_path / "theirs.pth", tmp_path / "ours.safetensors"
    torch.save(build().state_dict(), checkpoint)
    assert main(["convert", "--from", source, "--model", name, "--checkpoint", str(checkpoint), "--out", str(out), "--verify-size", "75"]) == 0
    model = registry_core.load(out)
    assert isinstance(model.stem.transform, torch.nn.Identity) is not transform
    assert len(model.aux_heads) == aux
    assert model.meta.mean == (registry_core.IMAGENET_MEAN if transform else (0.5, 0.5, 0.5))
