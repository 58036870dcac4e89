"""The ConvNeXt plugin: torchvision/timm parity (eval and training with stochastic
depth), counts and cost, key maps of every variant, the head, the blocks' shape rules
and the tags' class counts (each tag's facts and transform are checked against its
library by tests/test_weight_tags.py and tests/test_transforms.py).

Build/forward/backward/head-reset/in_chans checks for every model come from the
generic ``testing.check_model`` run in test_models.py. Numerical parity runs on
``convnext_tiny`` at 64x64; the other variants are compared on the meta device
(structure, counts, key maps), where nothing is allocated.
"""

import pytest
import torch

import registry_core
from registry_core import testing

torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")

MODELS = ["convnext_tiny", "convnext_small", "convnext_base", "convnext_large"]
LIBRARIES = ["torchvision", "timm"]


def source_model(library, name, *, drop_path_rate=0.0, num_classes=1000, meta=False):
    with torch.device("meta" if meta else "cpu"):
        if library == "torchvision":
            return torchvision.models.get_model(name, weights=None, stochastic_depth_prob=drop_path_rate,
                                                num_classes=num_classes)
        return timm.create_model(name, pretrained=False, drop_path_rate=drop_path_rate, num_classes=num_classes)


def perturb(model, seed=1):
    """Layer scales of 1e-6 and unit norms would hide a mixed-up branch: give every
    vector parameter (norms, biases, layer scales) values far from its start."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.dim() == 1 or name.endswith("layer_scale"):
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5 + 0.5)
    return model


def test_every_model_is_listed_with_its_plugin():
    assert registry_core.list_models("convnext*") == sorted(MODELS)
    record = next(r for r in registry_core.list_plugins() if r.name == "convnext")
    assert (record.distribution, record.status) == ("registry-convnext", "ok")
    assert set(record.provided["model"]) == set(MODELS)
    assert set(record.provided["converter"]) == {f"{lib}/{name}" for lib in LIBRARIES for name in MODELS}


@pytest.mark.parametrize("name", MODELS)
def test_size_and_cost_equal_torchvision_and_timm(name):
    info = registry_core.model_info(name)
    weights = torchvision.models.get_model_weights(name).DEFAULT
    assert info["params"] == weights.meta["num_params"]
    assert info["params"] == sum(p.numel() for p in source_model("timm", name, meta=True).parameters())
    assert info["gflops"] == pytest.approx(2 * weights.meta["_ops"], rel=0.01)
    assert (info["input_size"], info["min_input_size"]) == ((3, 224, 224), (3, 32, 32))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("library", LIBRARIES)
def test_key_maps_of_every_variant_fit_both_ways(library, name):
    """On the meta device: the converted keys and shapes are exactly our model's, and
    converting back gives the library's own."""
    theirs = source_model(library, name, meta=True).state_dict()
    converter = registry_core.get_converter(library, name)
    with torch.device("meta"):
        ours = registry_core.create(name).state_dict()
    converted = converter.to_ours(theirs)
    assert {k: v.shape for k, v in converted.items()} == {k: v.shape for k, v in ours.items()}
    assert {k: v.shape for k, v in converter.from_ours(ours).items()} == {k: v.shape for k, v in theirs.items()}


@pytest.mark.parametrize("library", LIBRARIES)
def test_converted_weights_give_the_same_outputs(library):
    torch.manual_seed(0)
    assert testing.check_conversion(library, "convnext_tiny", perturb(source_model(library, "convnext_tiny")),
                                    size=64, batch=2) <= 1e-5


@pytest.mark.parametrize("library", LIBRARIES)
def test_training_with_stochastic_depth_equals_the_library_under_one_seed(library):
    """Both libraries draw one Bernoulli per sample for each block whose rate is above
    zero, in block order, as we do: under one seed the same samples are dropped.
    torchvision's rates are ``p * k / (n - 1)`` in double precision, like ours, so its
    outputs are equal bit for bit; timm's come from a float32 ``linspace``, which moves
    the 1 / keep scaling in the seventh digit."""
    torch.manual_seed(0)
    source = perturb(source_model(library, "convnext_tiny", drop_path_rate=0.5)).train()
    ours = registry_core.create("convnext_tiny", drop_path_rate=0.5).train()
    ours.load_state_dict(registry_core.get_converter(library, "convnext_tiny").to_ours(source.state_dict()))
    x = torch.randn(4, 3, 32, 32)
    torch.manual_seed(1)
    expected = source(x)
    torch.manual_seed(1)
    got = ours(x)
    assert (got - expected).abs().max() <= (0 if library == "torchvision" else 1e-5)
    torch.manual_seed(2)
    assert not torch.allclose(got, ours(x)), "stochastic depth drew the same masks under two seeds"
    if library == "timm":  # unpooled features are normalised over channels, as timm's are
        source.eval().reset_classifier(0, "")
        ours.eval().reset_classifier(0, "")
        with torch.no_grad():
            assert (ours(x) - source(x)).abs().max() <= 1e-5 and ours(x).shape == (4, 768, 1, 1)


def test_stochastic_depth_rises_linearly_from_the_first_block_to_the_last():
    model = registry_core.create("convnext_tiny", drop_path_rate=0.3)
    rates = [block.drop_path.p for stage in model.stages for block in stage if hasattr(block, "drop_path")]
    assert len(rates) == 18 and rates == pytest.approx([0.3 * k / 17 for k in range(18)])
    spec = registry_core.model_spec("convnext_tiny")
    assert "drop_path" not in spec.stages[0].blocks[0].options and spec.stages[3].blocks[-1].options["drop_path"] == 0.1


def test_stages_start_with_the_downsampling_and_keep_timms_feature_info():
    with torch.device("meta"):
        model = registry_core.create("convnext_tiny", features_only=True)
        maps = model(torch.empty(1, 3, 64, 64))
    assert [(f["channels"], f["reduction"], f["module"]) for f in model.feature_info] == [
        (96, 4, "stages.0"), (192, 8, "stages.1"), (384, 16, "stages.2"), (768, 32, "stages.3")]
    assert [(m.shape[1], 64 // m.shape[-1]) for m in maps] == [(96, 4), (192, 8), (384, 16), (768, 32)]
    assert [type(stage[0]).__name__ for stage in model.stages] == ["ConvNeXtBlock"] + ["ConvNeXtDownsample"] * 3


def test_the_head_normalises_the_pooled_features_and_starts_as_torchvision_s():
    model = registry_core.create("convnext_tiny", num_classes=10)
    head = model.head
    assert isinstance(head.norm, registry_core.LayerNorm2d) and head.norm.eps == 1e-6
    assert torch.count_nonzero(head.fc.bias) == 0 and 0.015 < head.fc.weight.std() < 0.025
    model.reset_classifier(7)
    assert torch.count_nonzero(model.head.fc.bias) == 0 and model.head.fc.out_features == 7
    x = torch.randn(2, 768, 2, 2)
    expected = torch.nn.functional.layer_norm(x.mean((2, 3)), (768,), head.norm.weight, head.norm.bias, 1e-6)
    assert torch.allclose(model.forward_head(x, pre_logits=True), expected, atol=1e-6)
    assert [k for k in model.state_dict() if k.startswith("head.")] == ["head.norm.weight", "head.norm.bias",
                                                                      "head.fc.weight", "head.fc.bias"]


@pytest.mark.parametrize("name", ["convnext", "convnext_downsample"])
def test_blocks_keep_the_contract_at_their_declared_examples(name):
    cls = registry_core.get_component("block", name)
    assert cls.conformance_examples
    for example in cls.conformance_examples:
        testing.check_block(name, **example)


def test_a_convnext_block_refuses_to_change_width_or_resolution():
    with pytest.raises(ValueError, match="keeps its width and resolution"):
        testing.check_block("convnext", in_channels=16, out_channels=32)
    with pytest.raises(ValueError, match="keeps its width and resolution"):
        registry_core.get_component("block", "convnext")(16, 16, stride=2)


def test_layer_scale_and_head_dropout_are_create_options():
    model = registry_core.create("convnext_tiny", layer_scale=0.5, drop_rate=0.25)
    assert all(torch.all(block.gamma == 0.5) for stage in model.stages for block in stage if hasattr(block, "gamma"))
    assert model.head.drop.p == 0.25
    block = registry_core.get_component("block", "convnext")(8, 8)
    assert torch.all(block.gamma == 1e-6) and "layer_scale" not in registry_core.model_spec("convnext_tiny").stages[0].blocks[1].options


def test_tags_cover_both_libraries_with_their_class_counts():
    tags = {name: registry_core.pretrained_info(name) for name in registry_core.list_pretrained("convnext_tiny.*")}
    assert tags["convnext_tiny.tv_in1k"]["default"] and tags["convnext_tiny.tv_in1k"]["data_config"]["resize_size"] == 236
    counts = {name.split(".")[1]: info["num_classes"] for name, info in tags.items()}
    assert (counts["fb_in22k"], counts["in12k"], counts["dinov3_lvd1689m"], counts["fb_in1k"]) == (21841, 11821, 0, 1000)
