"""The ViT plugin: sizes, FLOPs, key maps and outputs equal torchvision's and timm's.

Every variant is compared structurally on the meta device (parameter counts, FLOPs,
state-dict keys and shapes both ways, the SWAG sizes); outputs are compared on
ViT-B/16 and ViT-B/32 at batch 1, in eval and training mode. The generic model checks
(forward, backward, tool chain, fuse, ...) run at full compute on vit_b_32, the family's
representative (``tests/compute_budget.py``). Runtime: about half a minute on 2 cores.
"""

import copy

import pytest
import torch
from registry_vit.models import VARIANTS
from torch import nn

import registry_core
from registry_core import DataConfig, InvalidOverrideError, WeightSource, WeightTag, hookimpl, testing
from registry_core.model.compose import meta_device

torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")

NAMES = list(VARIANTS)
LIBRARIES = ["torchvision", "timm"]


def library_model(library: str, name: str, **kwargs) -> nn.Module:
    """The library's model with 1,000 classes (timm's large and huge ones default to none,
    as their only weights have no classifier)."""
    if library == "torchvision":
        return torchvision.models.get_model(name, weights=None, **kwargs)
    return timm.create_model(VARIANTS[name].timm_name, pretrained=False, num_classes=1000, **kwargs)


def perturbed(model: nn.Module, seed: int = 1) -> nn.Module:
    """Norms away from weight 1 / bias 0 and a random classifier (torchvision's starts at
    zero, which would make every output 0 and any key map pass)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.LayerNorm):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
        classifier = model.heads.head if hasattr(model, "heads") else model.head
        classifier.weight.copy_(torch.randn(classifier.weight.shape, generator=generator) * 0.02)
        classifier.bias.copy_(torch.randn(classifier.bias.shape, generator=generator) * 0.1)
    return model


def source(library: str, name: str) -> nn.Module:
    """The library's model with random weights."""
    torch.manual_seed(0)
    return perturbed(library_model(library, name)).eval()


@pytest.fixture(scope="module")
def b32_models():
    """``library -> (its ViT-B/32 with random weights, ours holding them)``, built once for
    this module's tests (which copy what they change) and freed after them."""
    models = {}
    for library in LIBRARIES:
        theirs, ours = source(library, "vit_b_32"), registry_core.create("vit_b_32").eval()
        ours.load_state_dict(registry_core.get_converter(library, "vit_b_32").to_ours(theirs.state_dict()))
        models[library] = theirs, ours
    return models


@pytest.fixture
def b32_pair(b32_models):
    """timm's ViT-B/32 and ours, copies a test may change."""
    return copy.deepcopy(b32_models["timm"])


def test_every_model_is_listed_with_its_plugin():
    assert set(registry_core.list_models("vit_*")) == set(NAMES)
    record = next(r for r in registry_core.list_plugins() if r.name == "vit")
    assert (record.distribution, record.status) == ("registry-vit", "ok")
    assert set(record.provided["converter"]) == {f"{lib}/{name}" for lib in LIBRARIES for name in NAMES}
    assert all(timm.is_model(v.timm_name) for v in VARIANTS.values())


@pytest.mark.parametrize("name", NAMES)
def test_parameter_counts_equal_torchvisions_and_timms(name):
    info = registry_core.model_info(name, flops=False)
    at_224 = [w for w in torchvision.models.get_model_weights(name) if w.meta["min_size"] == (224, 224)]
    with torch.device("meta"):
        counts = {lib: sum(p.numel() for p in library_model(lib, name).parameters()) for lib in LIBRARIES}
    assert info["params"] == counts["torchvision"] == counts["timm"] == at_224[0].meta["num_params"]
    assert info["input_size"] == info["min_input_size"] == (3, 224, 224)


def torchvision_weights():
    registry = registry_core.plugins.default_host().registry
    tags = [registry.get("weights", n).obj for n in registry.names("weights", "vit_*")]
    return [pytest.param(t, id=t.name) for t in tags if t.source("torchvision")]


@pytest.mark.parametrize("tag", torchvision_weights())
def test_gflops_are_twice_torchvisions_multiply_adds_at_each_weights_size(tag):
    """torchvision's ``_ops`` are GFLOPs counting a multiply-add once; ours count it twice.
    A SWAG end-to-end tag builds the model for its size, as torchvision's weights do."""
    weights = torchvision.models.get_model_weights(tag.model)[tag.source("torchvision").member]
    with meta_device():
        model = registry_core.create(tag.name)
    assert model.meta.input_size[1:] == weights.meta["min_size"] == (tag.data.eval_size,) * 2
    assert sum(p.numel() for p in model.parameters()) == weights.meta["num_params"]
    gflops = registry_core.count_flops(model, model.meta.input_size) / 1e9
    assert gflops == pytest.approx(2 * weights.meta["_ops"], rel=0.01)


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("name", NAMES)
def test_key_maps_fit_both_ways(name, library):
    converter = registry_core.get_converter(library, name)
    with torch.device("meta"):
        theirs = {k: v.shape for k, v in library_model(library, name).state_dict().items()}
    with meta_device():
        ours = {k: v.shape for k, v in registry_core.create(name).state_dict().items()}
    assert {k: v.shape for k, v in converter.to_ours(_shaped(theirs)).items()} == ours
    assert {k: v.shape for k, v in converter.from_ours(_shaped(ours)).items()} == theirs


def test_swag_sizes_build_torchvisions_layout():
    """vit_h_14's default weights are SWAG's at 518 pixels: its position embeddings then fit 37 x 37 patches."""
    with torch.device("meta"):
        theirs = {k: v.shape for k, v in torchvision.models.vit_h_14(image_size=518).state_dict().items()}
    with meta_device():
        ours = registry_core.create("vit_h_14.swag_e2e_in1k")
    assert ours.stem.pos_embed.shape == (1, 1 + 37 * 37, 1280) and ours.data_config.eval_size == 518
    converted = registry_core.get_converter("torchvision", "vit_h_14").from_ours(_shaped({k: v.shape for k, v in ours.state_dict().items()}))
    assert {k: v.shape for k, v in converted.items()} == theirs


def _shaped(shapes):
    return {k: torch.empty(shape, device="meta") for k, shape in shapes.items()}


@pytest.mark.parametrize("library", LIBRARIES)
def test_converted_vit_b_16_gives_the_same_outputs_and_converts_back(library):
    assert testing.check_conversion(library, "vit_b_16", source(library, "vit_b_16"), size=224, batch=1) <= 1e-5


@pytest.mark.parametrize("library", LIBRARIES)
def test_converted_vit_b_32_gives_the_same_outputs_in_eval_and_training(library, b32_models):
    """No dropout by default in any of the three, so training mode is deterministic too."""
    theirs, ours = copy.deepcopy(b32_models[library])
    x = torch.randn(1, 3, 224, 224)
    for mode in (False, True):
        torch.manual_seed(1)
        want = theirs.train(mode)(x)
        torch.manual_seed(1)
        assert (ours.train(mode)(x) - want).abs().max().item() <= 1e-5 and want.std() > 0.1


def test_a_tag_for_another_image_size_converts_at_that_size(fresh_host, tmp_path):
    """What the SWAG tags do (384 to 518 pixels), on a 64-pixel ViT-B/32 (2 x 2 patches, cheap
    to run): the tag's image size builds our model and, for verification, torchvision's."""
    from registry_vit import plugin

    class Tags:
        @hookimpl
        def register_weights(self, register):
            register(WeightTag("vit_b_32", "at_64", DataConfig(input_size=(3, 64, 64), crop_pct=1.0),
                               (WeightSource("torchvision", "vit_b_32"),), create_kwargs={"image_size": 64}))

    fresh_host(plugin, "vit")
    fresh_host(Tags(), "tags")
    torch.manual_seed(0)
    torch.save(perturbed(torchvision.models.vit_b_32(image_size=64)).state_dict(), tmp_path / "vit_b_32_64.pth")
    facts = registry_core.convert_from("torchvision", "vit_b_32", tmp_path / "vit_b_32_64.pth", tmp_path / "ours.safetensors",
                                       tag="at_64", dtype="bfloat16")  # half the file to write: the outputs are compared before
    assert facts["verified"] == "eval outputs at 64x64, seed 0" and float(facts["max_abs_diff"]) <= 1e-5
    model = registry_core.load(tmp_path / "ours.safetensors")
    assert model.meta.input_size == (3, 64, 64) and model.stem.pos_embed.shape == (1, 5, 768)


def test_forward_intermediates_and_features_equal_timms(b32_pair):
    theirs, ours = b32_pair
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        for options in ({"indices": [3, 11]}, {"indices": 2, "output_fmt": "NLC"}, {"indices": [5], "norm": True}):
            want, got = theirs.forward_intermediates(x, **options), ours.forward_intermediates(x, **options)
            assert torch.equal(got[0], want[0]) and all(torch.equal(g, w) for g, w in zip(got[1], want[1]))
        want = theirs.forward_intermediates(x, indices=[0], return_prefix_tokens=True, intermediates_only=True)
        got = ours.forward_intermediates(x, indices=[0], return_prefix_tokens=True, intermediates_only=True)
        assert [t.shape for t in got[0]] == [(1, 768, 7, 7), (1, 1, 768)]
        assert all(torch.equal(g, w) for g, w in zip(got[0], want[0]))
        features = timm.create_model("vit_base_patch32_224", features_only=True, out_indices=(3, 11), pretrained=False)
        kept = {k: v for k, v in theirs.state_dict().items() if k.startswith(("patch_embed.", "cls_token", "pos_embed", "blocks."))}
        features.model.load_state_dict(kept)  # timm's feature model keeps the blocks only
        ours_features = registry_core.create("vit_b_32", features_only=True, out_indices=(3, 11)).eval()
        ours_features.load_state_dict({k: v for k, v in ours.state_dict().items() if k.startswith(("stem.", "stages."))})
        assert all(torch.equal(g, w) for g, w in zip(ours_features(x), features.eval()(x)))
    assert ours.feature_info.reduction() == [f["reduction"] for f in theirs.feature_info] == [32] * 12


def test_pooling_and_a_new_classifier_follow_timm(b32_pair):
    theirs, ours = b32_pair
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        for num_classes, pool in ((0, ""), (0, "avg"), (0, "token")):
            theirs.reset_classifier(num_classes, pool)
            ours.reset_classifier(num_classes, pool)
            assert torch.equal(ours(x), theirs(x))
    assert ours.head_hidden_size == theirs.head_hidden_size == ours.num_features == 768
    ours.reset_classifier(10)  # as torchvision starts its classifier: at zero
    assert not ours.head.fc.weight.any() and ours.pretrained_cfg["classifier"] == "head.fc"


def test_a_block_for_maps_cannot_join_a_vit():
    with pytest.raises(InvalidOverrideError, match="block 'basic' reads NCHW maps, but it is given NLC tokens"):
        registry_core.create("vit_b_16", block="basic")


def test_encoder_block_keeps_its_tokens_and_starts_as_torchvisions():
    block_cls = registry_core.get_component("block", "vit_block")
    torch.manual_seed(0)
    block = block_cls(768, 768, num_heads=12, mlp_dim=3072)
    block.init_weights()  # what the core calls after building it
    assert block(torch.randn(2, 50, 768)).shape == (2, 50, 768)
    bound = (6 / (768 + 3 * 768)) ** 0.5  # Xavier-uniform over the joint query/key/value weight, as torchvision's in_proj
    assert block.attn.qkv.weight.abs().max() <= bound and block.attn.qkv.weight.abs().max() > 0.95 * bound
    assert not block.attn.qkv.bias.any() and block.mlp.fc1.bias.abs().max() < 1e-5
    with pytest.raises(ValueError, match="keeps its tokens"):
        block_cls(768, 1024, num_heads=12, mlp_dim=3072)
    with pytest.raises(ValueError, match="do not split into 7 heads"):
        block_cls(768, 768, num_heads=7, mlp_dim=3072)
