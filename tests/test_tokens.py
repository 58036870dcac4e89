"""Token stages (``model/tokens.py``), the ``token_classifier`` head and the ``layer_norm``
norm block, on tiny token models written against the public API: formats are followed
and checked at build time, timm's feature API returns maps or tokens as timm's ViT does,
and attention's products are counted."""

import pytest
import torch
import torch.nn.functional as F
from components import TinyBlock, TinyStem, as_plugin
from torch import nn

import registry_core
from registry_core import (
    Block,
    BlockSpec,
    Component,
    InputSizeError,
    InvalidOverrideError,
    ModelMeta,
    ModelSpec,
    SpecError,
    StageSpec,
    Stem,
    hookimpl,
)

META = ModelMeta(family="tokens", num_classes=5, input_size=(3, 16, 12), min_input_size=(3, 4, 4))


class PatchStem(Stem):
    """``prefix`` learned tokens, then one token per 4x4 patch."""

    output_format = "NLC"

    def __init__(self, in_chans, out_channels=8, prefix=1):
        super().__init__(in_chans, out_channels, reduction=4)
        self.prefix_tokens = prefix
        self.proj = nn.Conv2d(in_chans, out_channels, 4, stride=4)
        self.prefix = nn.Parameter(torch.randn(1, prefix, out_channels))

    def forward(self, x):
        x = self.proj(x).flatten(2).transpose(1, 2)
        return torch.cat([self.prefix.expand(x.shape[0], -1, -1), x], dim=1)


class PositionalStem(PatchStem):
    """With a position embedding, one per patch of a 16 x 12 image: the model takes that size only."""

    def __init__(self, in_chans, out_channels=8, prefix=1):
        super().__init__(in_chans, out_channels, prefix)
        self.pos = nn.Parameter(torch.zeros(1, prefix + 12, out_channels))

    def forward(self, x):
        return super().forward(x) + self.pos


class TokenMlp(Block):
    input_format = output_format = "NLC"

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride)
        self.fc = nn.Linear(in_channels, out_channels)

    def forward(self, x):
        return F.gelu(self.fc(x))


class Tokenize(Block):
    """Maps in, tokens out (no prefix): the turn of a hybrid model."""

    output_format = "NLC"

    def forward(self, x):
        return x.flatten(2).transpose(1, 2)


def token_net(prefix: int = 1, pool: str = "token") -> ModelSpec:
    return ModelSpec(Component("patch_stem", {"prefix": prefix}),
                     (StageSpec("token_mlp", out_channels=8), StageSpec("token_mlp", out_channels=16)),
                     Component("token_classifier", {"pool": pool, "init": "pytorch"}), META,
                     norm=BlockSpec(16, block="layer_norm"))


def fixed_net() -> ModelSpec:
    fixed = ModelMeta(num_classes=5, input_size=(3, 16, 12), min_input_size=(3, 16, 12), fixed_input_size=True)
    spec = token_net()
    return ModelSpec(Component("positional_stem"), spec.stages, spec.head, fixed, norm=spec.norm)


def hybrid() -> ModelSpec:
    return ModelSpec(Component("tiny_stem"), (StageSpec("tiny_block", out_channels=8), StageSpec("tokenize", out_channels=8),
                                              StageSpec("token_mlp", out_channels=8)),
                     Component("token_classifier", {"pool": "avg"}), META)


@pytest.fixture
def tokens(fresh_host):
    @hookimpl
    def register_stems(register):
        register("patch_stem", PatchStem)
        register("positional_stem", PositionalStem)
        register("tiny_stem", TinyStem)

    @hookimpl
    def register_blocks(register):
        register("token_mlp", TokenMlp)
        register("tokenize", Tokenize)
        register("tiny_block", TinyBlock)

    @hookimpl
    def register_models(register):
        register("token_net", token_net)
        register("hybrid", hybrid)
        register("fixed_net", fixed_net)
        register("two_prefix", lambda: token_net(prefix=2))
        register("no_prefix", lambda: token_net(prefix=0, pool="avg"))

    fresh_host(as_plugin(register_stems=register_stems, register_blocks=register_blocks, register_models=register_models))


def stage_outputs(model, x):
    """What each stage module gives, through forward hooks."""
    seen = []
    hooks = [stage.register_forward_hook(lambda m, i, o: seen.append(o)) for stage in model.stages]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return seen


def test_token_stages_record_their_format_and_features_are_maps_on_the_patch_grid(tokens):
    model = registry_core.create("token_net").eval()
    assert [(f["format"], f["prefix_tokens"], f["channels"], f["reduction"]) for f in model.feature_info] == [
        ("NLC", 1, 8, 4), ("NLC", 1, 16, 4)]
    x = torch.randn(2, 3, 16, 12)
    tokens_out = stage_outputs(model, x)
    assert [t.shape for t in tokens_out] == [(2, 13, 8), (2, 13, 16)]  # a class token and a 4 x 3 grid
    features = registry_core.create("token_net", features_only=True).eval()
    features.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith(("head.", "norm."))})
    assert not hasattr(features, "norm")  # timm's features leave the final norm out, so the model has none
    with torch.no_grad():
        maps = features(x)
    for fmap, t in zip(maps, tokens_out):
        assert fmap.shape == (2, t.shape[-1], 4, 3) and fmap.is_contiguous()
        assert torch.equal(fmap[:, :, 2, 1], t[:, 1 + 2 * 3 + 1])  # row 2, column 1 of the grid, past the class token


def test_forward_intermediates_answers_like_timms_vit(tokens):
    model = registry_core.create("token_net").eval()
    x = torch.randn(2, 3, 16, 12)
    tokens_out = stage_outputs(model, x)
    with torch.no_grad():
        final, nlc = model.forward_intermediates(x, indices=2, output_fmt="NLC")
        pairs = model.forward_intermediates(x, indices=[1], return_prefix_tokens=True, intermediates_only=True)
        normed = model.forward_intermediates(x, indices=[1], norm=True, intermediates_only=True)
        early_final, _ = model.forward_intermediates(x, indices=[0], stop_early=True)
        assert torch.equal(final, model.forward_features(x)) and torch.equal(final, model.norm(tokens_out[1]))
    assert [torch.equal(a, t[:, 1:]) for a, t in zip(nlc, tokens_out)] == [True, True]
    (patches, prefix), = pairs
    assert patches.shape == (2, 16, 4, 3) and torch.equal(prefix, tokens_out[1][:, :1])
    assert torch.allclose(normed[0], model.as_maps([model.norm(tokens_out[1])], [1], 16, 12)[0])
    assert torch.equal(early_final, tokens_out[0])  # stopped early: the final norm (16 channels) never ran
    with pytest.raises(InvalidOverrideError, match="norm.*16-channel.*level 0 gives 8"):
        model.forward_intermediates(x, indices=[0], norm=True)
    with pytest.raises(InvalidOverrideError, match="output_fmt"):
        model.forward_intermediates(x, output_fmt="NHWC")


def test_a_hybrid_model_turns_maps_into_tokens(tokens):
    model = registry_core.create("hybrid", features_only=True).eval()
    assert [(f["format"], f["prefix_tokens"]) for f in model.feature_info] == [("NCHW", 0), ("NLC", 0), ("NLC", 0)]
    x = torch.randn(1, 3, 16, 12)
    with torch.no_grad():
        maps = model(x)
        tokens_of_maps = model.forward_intermediates(x, indices=[0], output_fmt="NLC", intermediates_only=True)[0]
    assert [m.shape for m in maps] == [(1, 8, 8, 6)] * 3
    assert torch.equal(maps[1], maps[0]) and torch.equal(tokens_of_maps, maps[0].flatten(2).transpose(1, 2))
    assert registry_core.create("hybrid")(x).shape == (1, 5)


def test_parts_that_disagree_on_the_format_are_refused_at_build_time(tokens):
    with pytest.raises(InvalidOverrideError, match=r"block 0 of stage 0: block 'tiny_block' reads NCHW maps, but it is given NLC tokens \(1 prefix\)"):
        registry_core.create("token_net", block="tiny_block")
    with pytest.raises(InvalidOverrideError, match=r"head 'classifier' reads NCHW maps, but the model gives NLC tokens"):
        registry_core.create("token_net", head="classifier")
    with pytest.raises(InvalidOverrideError, match="reads NLC tokens, but it is given NCHW maps"):
        registry_core.create("hybrid", block="token_mlp")
    with pytest.raises(InvalidOverrideError, match="global_pool.*'token' takes the class token.*no prefix token"):
        registry_core.create("no_prefix", global_pool="token", num_classes=3)


def test_the_core_tells_a_token_head_its_prefix_tokens(tokens, fresh_host):
    assert registry_core.create("two_prefix").head.prefix_tokens == 2
    assert registry_core.create("hybrid").head.prefix_tokens == 0

    @hookimpl
    def register_models(register):
        spec = token_net()
        register("told_twice", ModelSpec(spec.stem, spec.stages, Component("token_classifier", {"prefix_tokens": 1}), META))

    fresh_host(as_plugin(register_models=register_models), "extra")
    with pytest.raises(SpecError, match="given prefix_tokens by the core"):
        registry_core.create("told_twice")


@pytest.mark.parametrize("pool", ["token", "avg", "max"])
def test_token_head_pools_as_timm_does(tokens, pool):
    model = registry_core.create("two_prefix", num_classes=0, global_pool=pool).eval()
    x = torch.randn(2, 3, 16, 12)
    with torch.no_grad():
        features = model.forward_features(x)
        pooled = model(x)
    expected = {"token": features[:, 0], "avg": features[:, 2:].mean(1), "max": features[:, 2:].amax(1)}[pool]
    assert torch.allclose(pooled, expected)


def test_global_pool_and_reset_classifier_follow_timm(tokens):
    model = registry_core.create("token_net", num_classes=0, global_pool="").eval()
    x = torch.randn(2, 3, 16, 12)
    assert model(x).shape == (2, 13, 16)  # the normed tokens, unpooled
    model.reset_classifier(7)  # classes again: the head's own pooling, the class token, comes back
    assert model.head.pool == "token" and model(x).shape == (2, 7)
    model.reset_classifier(0, global_pool="avg")
    with torch.no_grad():
        assert torch.allclose(model(x), model.forward_features(x)[:, 1:].mean(1))
    with pytest.raises(InvalidOverrideError, match="global_pool.*'token', 'avg', 'max'"):
        model.reset_classifier(0, global_pool="map")


def test_token_head_initialises_its_classifier_as_each_library_does():
    from registry_core.model.token_head import TokenClassifierHead

    torch.manual_seed(0)
    zeros = TokenClassifierHead(64, 10, prefix_tokens=1)
    assert not zeros.fc.weight.any() and not zeros.fc.bias.any()
    zeros.reset(3)  # a new classifier starts the same way
    assert zeros.fc.out_features == 3 and not zeros.fc.weight.any()
    timm_like = TokenClassifierHead(64, 1000, prefix_tokens=1, init="trunc_normal").fc
    assert abs(timm_like.weight.std().item() - 0.0176) < 0.002 and timm_like.weight.abs().max() <= 0.04  # N(0, .02) cut at 2 std
    assert not timm_like.bias.any()
    assert TokenClassifierHead(64, 10, prefix_tokens=1, init="pytorch").fc.bias.any()
    with pytest.raises(ValueError, match="init must be"):
        TokenClassifierHead(64, 10, init="xavier")


def test_fixed_input_size_refuses_other_sizes_in_one_line(tokens):
    model = registry_core.create("fixed_net")
    assert model(torch.randn(1, 3, 16, 12)).shape == (1, 5) and model.pretrained_cfg["fixed_input_size"]
    with pytest.raises(InputSizeError, match="takes images of exactly 16x12 pixels .*got 20x12"):
        model(torch.randn(1, 3, 20, 12))
    with pytest.raises(SpecError, match="min_input_size must equal it"):
        ModelMeta(input_size=(3, 16, 16), min_input_size=(3, 8, 8), fixed_input_size=True)


def test_token_models_script_and_trace_to_the_same_maps(tokens):
    model = registry_core.create("token_net", features_only=True, out_indices=(1,)).eval()
    x = torch.randn(2, 3, 16, 12)
    with torch.no_grad():
        eager = model(x)
        for tool in (torch.jit.script(model), torch.fx.symbolic_trace(model)):
            assert torch.equal(tool(x)[0], eager[0])
    assert set(registry_core.testing.check_toolchain("token_net", size=16, tools=("script", "fx", "feature_extractor"))) == {
        "script", "fx", "feature_extractor"}


class Attention(nn.Module):
    def forward(self, x):
        q = k = v = x.unflatten(-1, (2, 4)).transpose(1, 2)  # 2 heads of 4 channels
        return F.scaled_dot_product_attention(q, k, v)


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_flop_counts_include_attentions_products(device):
    """torch's counter misses the CPU's fused attention kernel; on the meta device it sees the
    products. Both count 2 x (L x S x E + L x S x Ev) per head: 2 x 2 x (5 x 5 x 4 x 2) = 800."""

    class Tokens(nn.Module):  # count_flops feeds N x C x H x W: 1 x 5 x 8 x 1 becomes 5 tokens of 8 channels
        def __init__(self):
            super().__init__()
            self.attn = Attention()
            self.scale = nn.Parameter(torch.ones(1))

        def forward(self, x):
            return self.attn(x.squeeze(-1).transpose(1, 2) * self.scale)

    assert registry_core.count_flops(Tokens().to(device), (8, 5, 1)) == 800


def test_a_features_model_loads_a_whole_models_file_without_its_norm(tokens, tmp_path):
    model = registry_core.create("token_net").eval()
    registry_core.save(model, tmp_path / "token_net.safetensors")
    features = registry_core.create("token_net", weights=tmp_path / "token_net.safetensors", features_only=True).eval()
    x = torch.randn(1, 3, 16, 12)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(features(x), model.forward_intermediates(x, intermediates_only=True)))
