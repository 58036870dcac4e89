"""Composition: spec -> model, the model's interface, and create-time overrides."""

import pytest
import torch
from components import make_plugin

import registry_core
import registry_core.testing
from registry_core import AuxLogits, InvalidOverrideError, SpecError, UnknownComponentError, classification_loss


@pytest.fixture
def tiny_registry(fresh_host):
    fresh_host(make_plugin())
    return fresh_host.host


def test_stages_wire_channels_and_reductions(tiny_registry):
    model = registry_core.create("tiny")
    assert [(f["channels"], f["reduction"]) for f in model.feature_info] == [(16, 2), (32, 4)]
    assert model.stages[0][0].in_channels == 8 and model.stages[1][0].in_channels == 16
    assert [b.stride for b in model.stages[1]] == [2]
    y = model(torch.randn(2, 3, 32, 32))
    assert y.shape == (2, 4)


def test_forward_is_features_then_head(tiny_registry):
    model = registry_core.create("tiny").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape == (2, 32, 8, 8)
        assert torch.equal(model.forward_head(features), model(x))
        assert model.forward_head(features, pre_logits=True).shape == (2, 32)


def test_features_only_returns_each_stage(tiny_registry):
    model = registry_core.create("tiny", features_only=True)
    maps = model(torch.randn(1, 3, 32, 32))
    assert [m.shape[1] for m in maps] == [f["channels"] for f in model.feature_info]
    assert [32 // m.shape[-1] for m in maps] == [f["reduction"] for f in model.feature_info]
    assert model.head is None and model.create_kwargs["features_only"] is True
    with pytest.raises(SpecError):
        model.reset_classifier(3)


def test_num_classes_and_in_chans_overrides(tiny_registry):
    model = registry_core.create("tiny", num_classes=7, in_chans=1)
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 7)
    assert model.meta.input_size == (1, 32, 32) and len(model.meta.mean) == 1
    assert model.create_kwargs == {"num_classes": 7, "in_chans": 1}


def test_reset_classifier_changes_logits_and_zero_gives_features(tiny_registry):
    model = registry_core.create("tiny")
    model.reset_classifier(9)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 9)
    model.reset_classifier(0)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, model.num_features)


def test_block_swap_replaces_every_block_and_keeps_shapes(tiny_registry):
    model = registry_core.create("tiny", block="other_block")
    blocks = [b for stage in model.stages for b in stage]
    assert blocks and all(type(b).__name__ == "OtherBlock" for b in blocks)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 4)


def test_block_swap_to_unknown_block_suggests(tiny_registry):
    with pytest.raises(UnknownComponentError, match="did you mean 'other_block'"):
        registry_core.create("tiny", block="other_blok")


def test_swapped_block_rejecting_an_option_names_the_parameter(tiny_registry):
    with pytest.raises(InvalidOverrideError) as excinfo:
        registry_core.create("tiny", expand=2, block="other_block")
    assert excinfo.value.parameter == "block" and "expand" in str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)


def test_model_options_are_the_builders_keywords(tiny_registry):
    model = registry_core.create("tiny", width=4, expand=2)
    assert model.feature_info[-1]["channels"] == 8
    assert model.stages[0][0].conv.out_channels == 8
    with pytest.raises(InvalidOverrideError, match="depth_multiplier.*width"):
        registry_core.create("tiny", depth_multiplier=2)


def test_mixed_stage_cannot_take_one_block(tiny_registry):
    assert registry_core.create("tiny_mixed")(torch.randn(1, 3, 32, 32)).shape == (1, 4)
    with pytest.raises(InvalidOverrideError, match="^block"):
        registry_core.create("tiny_mixed", block="tiny_block")


def test_stem_and_head_swaps(tiny_registry):
    model = registry_core.create("tiny", head="mlp")
    assert type(model.head).__name__ == "MLPHead"
    with pytest.raises(UnknownComponentError):
        registry_core.create("tiny", stem="nope")


def test_aux_heads_in_training_and_eval(tiny_registry):
    model = registry_core.create("tiny_aux", num_classes=5)
    x, target = torch.randn(3, 3, 32, 32), torch.tensor([0, 1, 4])
    out = model.train()(x)
    assert isinstance(out, AuxLogits) and out.weights == (0.3,)
    assert out.logits.shape == (3, 5) and out.aux[0].shape == (3, 5)
    loss = classification_loss(out, target)
    expected = torch.nn.functional.cross_entropy(out.logits, target) + 0.3 * torch.nn.functional.cross_entropy(out.aux[0], target)
    assert torch.allclose(loss, expected)
    assert model.eval()(x).shape == (3, 5)
    model.reset_classifier(2)
    assert model.train()(x).aux[0].shape == (3, 2)


def test_bad_overrides_are_value_errors(tiny_registry):
    with pytest.raises(InvalidOverrideError, match="in_chans"):
        registry_core.create("tiny", in_chans=0)
    with pytest.raises(InvalidOverrideError, match="num_classes"):
        registry_core.create("tiny", num_classes=-1)


def test_spec_validation():
    from registry_core import AuxHeadSpec, Component, ModelSpec, StageSpec

    with pytest.raises(SpecError):
        ModelSpec(Component("s"), (), Component("h"))
    with pytest.raises(SpecError, match="no stage named"):
        ModelSpec(Component("s"), (StageSpec("b", 1, 8),), Component("h"), aux_heads=(AuxHeadSpec("h", "missing", 0.3),))
    with pytest.raises(SpecError):
        StageSpec("b", depth=0, out_channels=8).expand()


def test_model_info_counts_params_without_building_weights(tiny_registry):
    info = registry_core.model_info("tiny")
    real = registry_core.create("tiny")
    assert info["params"] == sum(p.numel() for p in real.parameters())
    assert info["gflops"] > 0 and info["gmacs"] == info["gflops"] / 2 and info["family"] == "tiny"
    assert info["plugin"] == "test-plugin" and info["input_size"] == (3, 32, 32) and info["num_classes"] == 4
    light = registry_core.model_info("tiny", flops=False)  # without the counting pass: no GFLOPs, no GMACs
    assert light == {k: v for k, v in info.items() if k not in ("gflops", "gmacs")}


def test_meta_device_builds_the_same_architecture_without_data(tiny_registry):
    from registry_core.model.compose import meta_device

    with meta_device():
        model = registry_core.create("tiny")
    real = registry_core.create("tiny")
    assert all(t.is_meta for t in model.state_dict().values())
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in real.state_dict().items()}


class _LinearOnMaxHead(registry_core.Head):
    """A head written against the documented contract: it builds its classifier with
    ``make_classifier`` and inherits ``reset``."""

    def __init__(self, in_features, num_classes, hidden=6):
        super().__init__(in_features, num_classes)
        self.proj = torch.nn.Linear(in_features, hidden)
        self.fc = self.make_classifier(hidden)

    def forward(self, x, pre_logits=False):
        x = self.proj(x.amax(dim=(2, 3)))
        return x if pre_logits else self.fc(x)


def test_a_registered_head_swaps_in_and_inherits_reset(fresh_host):
    from components import as_plugin

    @registry_core.hookimpl
    def register_heads(register):
        register("max_linear", _LinearOnMaxHead)

    fresh_host(make_plugin())
    assert fresh_host(as_plugin(register_heads=register_heads), "heads").status == "ok"
    model = registry_core.create("tiny", head="max_linear", num_classes=3)
    assert isinstance(model.head, _LinearOnMaxHead) and model(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    model.reset_classifier(5)
    assert model.head.fc.out_features == 5 and model(torch.randn(1, 3, 32, 32)).shape == (1, 5)
    model.reset_classifier(0)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 6)
    registry_core.testing.check_head("max_linear")


def test_a_head_without_make_classifier_must_implement_reset():
    class Bare(registry_core.Head):
        def forward(self, x, pre_logits=False):
            return x

    with pytest.raises(NotImplementedError, match="Bare .*must implement reset"):
        Bare(4, 2).reset(3)


# feature taps: earlier levels a stem or block declares, numbered as timm numbers levels


class _TappedStem(registry_core.Stem):
    """conv /2, then a max-pool /2; the map before the pool is a level."""

    feature_taps = (registry_core.FeatureTap("conv", 8, 2),)

    def __init__(self, in_chans):
        super().__init__(in_chans, 8, reduction=4)
        self.conv = torch.nn.Conv2d(in_chans, 8, 3, stride=2, padding=1)
        self.pool = torch.nn.MaxPool2d(2)

    def forward(self, x):
        return self.forward_taps(x)[0]

    def forward_taps(self, x):
        x = self.conv(x)
        return self.pool(x), [x]


class _PooledBlock(registry_core.Block):
    """conv, then a pool of ``stride``; the map before the pool is a level."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride)
        self.conv = torch.nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.pool = torch.nn.MaxPool2d(stride)
        self.feature_taps = (registry_core.FeatureTap("conv", out_channels, 1),)

    def forward(self, x):
        return self.pool(self.conv(x))

    def forward_taps(self, x):
        x = self.conv(x)
        return self.pool(x), [x]


def _tapped_spec():
    from registry_core import Component, ModelSpec, StageSpec

    stages = (StageSpec("pooled", 1, 12, 2, level=False), StageSpec("pooled", 1, 16, 2))
    return ModelSpec(Component("tapped_stem"), stages, Component("classifier"), registry_core.ModelMeta(num_classes=3))


def _build_tapped(**options):
    from registry_core.model.assemble import build
    from registry_core.model.heads import ClassifierHead

    classes = {"tapped_stem": _TappedStem, "pooled": _PooledBlock, "classifier": ClassifierHead}
    return build(_tapped_spec(), lambda kind, name: classes[name], **options).eval()


def test_feature_taps_are_levels_in_forward_order():
    model = _build_tapped()
    info = model.feature_info
    assert info.module_name() == ["stem.conv", "stages.0.0.conv", "stages.1.0.conv", "stages.1"]
    assert info.channels() == [8, 12, 16, 16] and info.reduction() == [2, 4, 8, 16]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        stem_map = model.stem.conv(x)
        picked = model.forward_intermediates(x, indices=[0, 2], stop_early=True, intermediates_only=True)
        features = _build_tapped(features_only=True, out_indices=(1, 3))
        features.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("head.")})
        selected = features(x)
    assert torch.equal(final, model.forward_features(x)) and torch.equal(maps[0], stem_map)
    assert [tuple(m.shape[1:]) for m in maps] == [(8, 16, 16), (12, 8, 8), (16, 4, 4), (16, 2, 2)]
    assert torch.equal(picked[1], maps[2]) and len(selected) == 2 and torch.equal(selected[0], maps[1])
    assert torch.equal(selected[1], maps[3]) and features.feature_info.module_name() == ["stages.0.0.conv", "stages.1"]
    with pytest.raises(InvalidOverrideError, match="out_indices"):
        _build_tapped(features_only=True, out_indices=(4,))


def test_a_spec_keeps_the_last_stage_a_level_and_taps_well_formed():
    from registry_core import Component, ModelSpec, StageSpec

    with pytest.raises(SpecError, match="last stage"):
        ModelSpec(Component("s"), (StageSpec("b", 1, 8, level=False),), Component("classifier"))
    _TappedStem.feature_taps = ("conv",)
    try:
        with pytest.raises(SpecError, match="FeatureTap"):
            _build_tapped()
    finally:
        _TappedStem.feature_taps = (registry_core.FeatureTap("conv", 8, 2),)


def test_aux_outputs_take_the_spec_names_and_order():
    from registry_core import AuxHeadSpec, Component, ModelSpec, StageSpec

    logits, first, second = (torch.full((1, 2), float(i)) for i in range(3))
    out = AuxLogits(logits, (first, second), (0.3, 0.3), ("aux_a", "aux_b"), (1, 0))
    assert out.aux_a is first and out.aux_b is second and out.aux == (first, second)
    head, b, a = out  # tuple order: logits, then the aux outputs by output_position
    assert head is logits and a is first and b is second
    assert torch.equal(classification_loss(out, torch.tensor([1])), classification_loss(logits, torch.tensor([1])) * 1.6)
    import pickle

    again = pickle.loads(pickle.dumps(out))
    assert torch.equal(again.aux_a, first) and torch.equal(again[1], second) and again.weights == out.weights
    stages = (StageSpec("b", 1, 8),)
    for bad in ("logits", "1x", "_x"):
        with pytest.raises(SpecError, match="output_name"):
            ModelSpec(Component("s"), stages, Component("c"), aux_heads=(AuxHeadSpec("c", 0, 0.3, output_name=bad),))
    with pytest.raises(SpecError, match="output_position"):
        ModelSpec(Component("s"), stages, Component("c"), aux_heads=(AuxHeadSpec("c", 0, 0.3, output_position=1),))
