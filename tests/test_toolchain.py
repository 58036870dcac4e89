"""Every registered model runs under PyTorch's tools (TorchScript, torch.fx, export,
compile) with the eager model's outputs, and answers timm's model API."""

import pytest
import torch
from components import TinyStem, as_plugin
from compute_budget import full_compute
from torch import nn

import registry_core
from registry_core import (
    Block,
    Component,
    ConformanceError,
    InputSizeError,
    InvalidOverrideError,
    ModelMeta,
    ModelSpec,
    StageSpec,
    hookimpl,
    testing,
)


@pytest.mark.parametrize("name", registry_core.list_models())
def test_every_tool_gives_the_eager_outputs(name):
    full_compute(name)
    differences = testing.check_toolchain(name)
    assert set(differences) == set(testing.TOOLS)


def test_torch_compile_gives_the_eager_outputs():
    """aot_eager runs dynamo and AOTAutograd without a C++ build, to stay fast on CI;
    the default inductor backend passes too (``tools=("compile",)``)."""
    assert set(testing.check_toolchain("lenet5", tools=("compile",), compile_backend="aot_eager")) == {"compile"}


def test_a_scripted_features_model_returns_the_selected_maps():
    model = registry_core.create("resnet18", features_only=True, out_indices=(0, 2, 4)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        eager, scripted = model(x), torch.jit.script(model)(x)
    assert [m.shape[1] for m in scripted] == [64, 128, 512]
    assert all(torch.equal(a, b) for a, b in zip(eager, scripted))


def test_a_scripted_model_keeps_the_eager_error_on_a_small_input_eagerly_only():
    model = registry_core.create("vgg11").eval()
    scripted = torch.jit.script(model)
    with pytest.raises(InputSizeError):
        model(torch.randn(1, 3, 31, 31))
    with pytest.raises(RuntimeError, match="too small"):  # no try/except in TorchScript: the layer's own error
        scripted(torch.randn(1, 3, 31, 31))


class _KwargsBlock(Block):
    """Not scriptable: TorchScript compiles no ``**kwargs``."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)

    def forward(self, x, **kwargs):
        return self.conv(x)


def test_check_toolchain_names_the_failing_tool_and_why(fresh_host):
    spec = ModelSpec(Component("tiny_stem"), (StageSpec("kwargs_block", 1, 8, 2),), Component("classifier"),
                     ModelMeta(num_classes=3, input_size=(3, 32, 32), min_input_size=(3, 8, 8)))

    @hookimpl
    def register_stems(register):
        register("tiny_stem", TinyStem)

    @hookimpl
    def register_blocks(register):
        register("kwargs_block", _KwargsBlock)

    @hookimpl
    def register_models(register):
        register("kwargs_net", spec)

    fresh_host(as_plugin(register_stems=register_stems, register_blocks=register_blocks, register_models=register_models))
    with pytest.raises(ConformanceError, match=r"model 'kwargs_net': script: \w+: .*(kwargs|variable number)") as info:
        testing.check_toolchain("kwargs_net")
    assert "trace:" not in str(info.value) and "\n" not in str(info.value)  # only the failing tool, one line each
    assert set(testing.check_toolchain("kwargs_net", tools=("trace", "fx", "export"))) == {"trace", "fx", "export"}


# timm's model API


@pytest.mark.parametrize("name, out_indices, channels, reductions", [
    ("lenet5", (0,), [16], [4]),
    ("alexnet", (-1,), [256], [32]),
    ("resnet18", (1, 3), [64, 256], [4, 16]),
    ("resnet18", 2, [256, 512], [16, 32]),
    ("resnet18", (0, -1), [64, 512], [2, 32]),  # level 0: the stem's activation before its pool, as in timm
])
def test_features_only_with_out_indices(name, out_indices, channels, reductions):
    model = registry_core.create(name, features_only=True, out_indices=out_indices).eval()
    info = model.feature_info
    assert info.channels() == channels and info.reduction() == reductions
    assert len(info.module_name()) == len(channels) and all(m.startswith(("stages.", "stem.")) for m in info.module_name())
    side = max(model.meta.min_input_size[-1], 64)
    maps = model(torch.randn(1, model.meta.input_size[0], side, side))
    assert [m.shape[1] for m in maps] == channels
    assert model.create_kwargs["out_indices"] == out_indices


def _copy_to_timm_features(ours, theirs, converter):
    """Our weights into a timm ``features_only`` model, whose names are the full model's
    (under ``model.``, or flattened as ``features_0`` by timm's ``FeatureListNet``)."""
    wanted = theirs.state_dict()
    state = {}
    for key, value in converter.from_ours(ours.state_dict()).items():
        state.update({name: value for name in (key, f"model.{key}", key.replace(".", "_", 1)) if name in wanted})
    theirs.load_state_dict(state)


@pytest.mark.parametrize("name, size, options", [("resnet18", 64, {}), ("vgg11_bn", 32, {}),
                                                 ("inception_v3", 75, {"aux_logits": False})])  # timm's has no aux head
def test_feature_levels_are_timms(name, size, options):
    """Same levels as timm's for the same architecture: channels, reductions and maps."""
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    theirs = timm.create_model(name, features_only=True, pretrained=False).eval()
    whole = registry_core.create(name, **options).eval()
    ours = registry_core.create(name, features_only=True).eval()
    ours.load_state_dict({k: v for k, v in whole.state_dict().items() if k in ours.state_dict()})
    assert ours.feature_info.channels() == theirs.feature_info.channels()
    assert ours.feature_info.reduction() == theirs.feature_info.reduction()
    _copy_to_timm_features(whole, theirs, registry_core.get_converter("timm", name))
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        want, got = theirs(x), ours(x)
        final, inter = whole.forward_intermediates(x)
    assert len(got) == len(want) and all(torch.allclose(a, b, atol=1e-5) for a, b in zip(got, want))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(inter, want)) and len(inter) == len(want)
    assert torch.equal(final, whole.forward_features(x))


@pytest.mark.parametrize("name, timm_name, out_indices", [("vit_b_16", "vit_base_patch16_224", (0, 5, 11)),
                                                      ("vit_b_16", "vit_base_patch16_224", None),  # timm's default: the last 3
                                                      ("convnext_tiny", "convnext_tiny", None)])
def test_token_and_convnext_levels_are_timms(name, timm_name, out_indices):
    """ViT's levels are its blocks and ConvNeXt's its stages in timm as in ours (meta device)."""
    timm = pytest.importorskip("timm")
    options = {} if out_indices is None else {"out_indices": out_indices}
    with torch.device("meta"):
        theirs = timm.create_model(timm_name, features_only=True, pretrained=False, **options)
        ours = registry_core.create(name, features_only=True, **options)
    assert ours.feature_info.channels() == theirs.feature_info.channels()
    assert ours.feature_info.reduction() == theirs.feature_info.reduction()
    assert [int(m.rsplit(".", 1)[-1]) for m in ours.feature_info.module_name()] == \
        [int(m.rsplit(".", 1)[-1]) for m in theirs.feature_info.module_name()]  # the same blocks or stages


def test_out_indices_are_checked():
    with pytest.raises(InvalidOverrideError, match="out_indices.*stage index"):
        registry_core.create("lenet5", features_only=True, out_indices=(1,))
    with pytest.raises(InvalidOverrideError, match="out_indices.*stage index"):
        registry_core.create("resnet18", features_only=True, out_indices=(5,))
    with pytest.raises(InvalidOverrideError, match="out_indices.*features_only=True"):
        registry_core.create("lenet5", out_indices=(0,))


def test_forward_intermediates_follows_timm():
    model = registry_core.create("resnet18").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        final_all, every = model.forward_intermediates(x)  # always (final, intermediates), as timm's
        final, picked = model.forward_intermediates(x, indices=[2, 4])
        last_two = model.forward_intermediates(x, indices=2, intermediates_only=True)
        early = model.forward_intermediates(x, indices=[0], stop_early=True, intermediates_only=True)
        features = model.forward_features(x)
    assert [m.shape[1] for m in every] == [64, 64, 128, 256, 512]
    assert torch.equal(final, features) and torch.equal(final_all, features) and [m.shape[1] for m in picked] == [128, 512]
    assert torch.equal(picked[0], every[2]) and torch.equal(last_two[1], every[4])
    assert len(early) == 1 and torch.equal(early[0], every[0]) and early[0].shape[-1] == 32
    with pytest.raises(InvalidOverrideError, match="output_fmt"):
        model.forward_intermediates(x, output_fmt="NHWC")


@pytest.mark.parametrize("name", ["googlenet", "lenet5"])
def test_forward_intermediates_unpacks_on_any_model(name):
    """The plain call unpacks as ``final, inter`` whatever the number of levels."""
    model = registry_core.create(name).eval()
    x = torch.randn(2, model.meta.input_size[0], *model.meta.min_input_size[1:])
    with torch.no_grad():
        final, inter = model.forward_intermediates(x)
    assert torch.equal(final, model.forward_features(x)) and len(inter) == len(model.feature_info)


def test_forward_intermediates_returns_what_timm_returns():
    timm = pytest.importorskip("timm")
    theirs = timm.create_model("resnet18", pretrained=False).eval()
    ours = registry_core.create("resnet18").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        want, got = theirs.forward_intermediates(x, indices=[0, 3]), ours.forward_intermediates(x, indices=[0, 3])
        want_all, got_all = theirs.forward_intermediates(x), ours.forward_intermediates(x)
    assert type(want) is type(got) and len(want) == len(got) == 2
    assert [m.shape for m in got[1]] == [m.shape for m in want[1]]
    assert type(want_all) is type(got_all) and [m.shape for m in got_all[1]] == [m.shape for m in want_all[1]]


@pytest.mark.parametrize("name, unpooled", [("resnet18", (512, 2, 2)), ("vgg11", (512, 2, 2)), ("lenet5", (16, 5, 5))])
def test_no_classes_and_no_pooling_give_the_map(name, unpooled):
    model = registry_core.create(name, num_classes=0, global_pool="").eval()
    chans, side = model.meta.input_size[0], 64 if name != "lenet5" else 32
    with torch.no_grad():
        out = model(torch.randn(1, chans, side, side))
    assert tuple(out.shape) == (1, *unpooled)
    assert model.create_kwargs["global_pool"] == ""


def test_no_pooling_matches_timm():
    timm = pytest.importorskip("timm")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        want = timm.create_model("resnet18", num_classes=0, global_pool="", pretrained=False).eval()(x)
        got = registry_core.create("resnet18", num_classes=0, global_pool="").eval()(x)
    assert got.shape == want.shape


def test_reset_classifier_with_global_pool():
    model = registry_core.create("resnet18").eval()
    x = torch.randn(2, 3, 64, 64)
    model.reset_classifier(0, global_pool="")
    assert model(x).shape == (2, 512, 2, 2)
    model.reset_classifier(0, global_pool="max")
    assert model(x).shape == (2, 512) and isinstance(model.head.pool, nn.AdaptiveMaxPool2d)
    model.reset_classifier(0, "")
    model.reset_classifier(7)  # classes again: the default pooling comes back
    assert model(x).shape == (2, 7)
    with pytest.raises(InvalidOverrideError, match="global_pool.*num_classes=0"):
        model.reset_classifier(3, global_pool="")
    with pytest.raises(InvalidOverrideError, match="global_pool"):
        registry_core.create("resnet18", global_pool="")
    with pytest.raises(InvalidOverrideError, match="global_pool"):
        registry_core.create("vgg11", num_classes=0, global_pool="max")


@pytest.mark.parametrize("name", ["resnet18", "vgg16", "inception_v3"])
def test_sizes_and_pretrained_cfg_answer_like_timm(name):
    timm = pytest.importorskip("timm")
    with registry_core.model.compose.meta_device():
        theirs = timm.create_model(name, pretrained=False)
    ours = registry_core.create(name)
    assert (ours.num_features, ours.head_hidden_size) == (theirs.num_features, theirs.head_hidden_size)
    cfg = ours.pretrained_cfg
    assert {"first_conv", "classifier", "input_size", "mean", "std", "interpolation", "crop_pct", "num_classes"} <= set(cfg)
    assert cfg["input_size"] == theirs.pretrained_cfg["input_size"] and cfg["num_classes"] == 1000
    modules = dict(ours.named_modules())
    assert isinstance(modules[cfg["first_conv"]], nn.Conv2d) and modules[cfg["first_conv"]].in_channels == 3
    assert isinstance(modules[cfg["classifier"]], nn.Linear) and modules[cfg["classifier"]].out_features == 1000
    assert cfg["mean"] == ours.meta.mean and cfg["crop_pct"] == ours.meta.crop_pct and ours.default_cfg == cfg


def test_inception_v3_at_batch_1_in_training():
    """timm's inception_v3 has no auxiliary head by default and trains at batch 1; with
    one (aux_logits=True) its BatchNorm fails there. Ours has the head by default (as
    torchvision's), so batch 1 is our error naming the head and the fix."""
    x = torch.randn(1, 3, 139, 139)
    model = registry_core.create("inception_v3").train()
    with pytest.raises(InputSizeError, match=r"auxiliary head \(aux_heads\.0.*batch of 1.*aux_logits=False"):
        model(x)
    without = registry_core.create("inception_v3", aux_logits=False).train()
    assert without(x).shape == (1, 1000)
    assert model(torch.randn(2, 3, 139, 139)).aux[0].shape == (2, 1000)
