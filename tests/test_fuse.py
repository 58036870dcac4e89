"""``model.fuse()``: BatchNorms folded into the convolutions before them give the eval
model's outputs, for every registered model, and a fused model is inference only."""

import copy

import pytest
import torch
from compute_budget import full_compute
from torch import nn

import registry_core
from registry_core import Block, Component, ModelMeta, ModelSpec, StageSpec, Stem
from registry_core.errors import InputSizeError, TrainingError, WeightsError
from registry_core.model.assemble import build
from registry_core.model.compose import ComposedModel
from registry_core.model.heads import ClassifierHead

TOLERANCE = 1e-5


def batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def randomise_batchnorms(model: nn.Module, seed: int = 0) -> None:
    """Statistics and affine terms away from a fresh BatchNorm's identity, so folding them
    wrongly shows; the scales stay below 1 so deep residual stacks keep outputs near 1."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in model.modules():
            if isinstance(bn, nn.BatchNorm2d):
                bn.running_mean.normal_(0, 0.1, generator=generator)
                bn.running_var.uniform_(0.75, 1.5, generator=generator)
                bn.weight.uniform_(0.5, 1.0, generator=generator)
                bn.bias.normal_(0, 0.05, generator=generator)


def small_batch(model: ComposedModel, batch: int = 2) -> torch.Tensor:
    """A batch at 32 px, or at ``min_input_size`` where that is larger: enough for every
    layer to run, and cheap for the widest models."""
    channels = model.meta.input_size[0]
    side = max(model.meta.min_input_size[1], 32)
    return torch.randn(batch, channels, side, side, generator=torch.Generator().manual_seed(1))


def eval_model(name: str, **options) -> ComposedModel:
    model = registry_core.create(name, **options).eval()
    randomise_batchnorms(model)
    return model


def max_difference(a, b) -> float:
    if isinstance(a, list):
        return max(max_difference(x, y) for x, y in zip(a, b, strict=True))
    return (a - b).abs().max().item()


@pytest.mark.parametrize("name", registry_core.list_models())
def test_fused_model_gives_the_eval_outputs_without_batchnorms(name):
    full_compute(name)
    model = eval_model(name)
    x = small_batch(model)
    with torch.inference_mode():
        expected = model(x)
    assert model.fuse() is model
    assert model.fused and isinstance(model, ComposedModel)
    assert batchnorms(model) == 0
    with torch.inference_mode():
        assert max_difference(model(x), expected) <= TOLERANCE


def test_the_fused_model_keeps_the_composed_model_api():
    reference = eval_model("vgg11_bn")
    model = copy.deepcopy(reference)
    data_config, feature_info = model.data_config, list(model.feature_info)
    model.fuse()
    x = small_batch(model)
    with torch.inference_mode():
        features = model.forward_features(x)
        assert max_difference(features, reference.forward_features(x)) <= TOLERANCE
        pre_logits = model.forward_head(features, pre_logits=True)
        assert max_difference(pre_logits, reference.forward_head(features, pre_logits=True)) <= TOLERANCE
    assert model.data_config is data_config and list(model.feature_info) == feature_info
    assert model.pretrained_cfg["first_conv"] == reference.pretrained_cfg["first_conv"]
    with pytest.raises(InputSizeError, match="at least 32x32"):
        model(torch.randn(1, 3, 16, 16))


def test_a_features_only_model_fuses_and_returns_the_same_maps():
    reference = eval_model("resnet50", features_only=True, out_indices=(2, 4))  # timm's levels: 0 is the stem's
    model = copy.deepcopy(reference).fuse()
    x = small_batch(model)
    with torch.inference_mode():
        expected, maps = reference(x), model(x)
    assert [m.shape[1] for m in maps] == [512, 2048]
    assert batchnorms(model) == 0 and max_difference(maps, expected) <= TOLERANCE


def test_channels_last_converts_the_model_and_keeps_the_outputs():
    reference = eval_model("resnet18")
    model = copy.deepcopy(reference).fuse(channels_last=True)
    x = small_batch(model)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    assert not reference.stem.conv.weight.is_contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        out = model(x.contiguous(memory_format=torch.channels_last))
        assert max_difference(out, reference(x)) <= TOLERANCE


def test_a_model_in_training_mode_is_refused_and_left_unchanged():
    model = registry_core.create("resnet18")
    with pytest.raises(TrainingError, match=r"eval\(\) before fuse"):
        model.fuse()
    assert not model.fused and batchnorms(model) == 20 and type(model) is ComposedModel


def test_a_fused_model_refuses_to_train_and_stays_in_eval_mode():
    model = eval_model("resnet18").fuse()
    with pytest.raises(TrainingError, match="fused for inference"):
        model.train()
    assert not any(m.training for m in model.modules())
    assert model.eval() is model  # eval() goes through train(False), which stays allowed


def test_save_refuses_a_fused_model(tmp_path):
    model = eval_model("resnet18")
    registry_core.save(model, tmp_path / "unfused.safetensors")  # the same model saves before fusing
    model.fuse()
    with pytest.raises(WeightsError, match="no longer matches the architecture"):
        registry_core.save(model, tmp_path / "fused.safetensors")
    assert not (tmp_path / "fused.safetensors").exists()


def test_a_scripted_fused_model_gives_the_eager_outputs():
    model = eval_model("resnet18").fuse(channels_last=True)
    x = small_batch(model).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        assert torch.equal(torch.jit.script(model)(x), model(x))


class ConvBn(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        return self.bn(self.conv(x))


class PlainStem(Stem):
    def __init__(self, in_chans: int, out_channels: int = 8):
        super().__init__(in_chans, out_channels, reduction=1)
        self.conv = nn.Conv2d(in_chans, out_channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return self.bn(self.conv(x)).relu()


class UntraceableBlock(Block):
    """Branches on a value, so torch.fx cannot trace it; its ``inner`` child traces."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__(in_channels, out_channels, stride)
        self.inner = ConvBn(in_channels)
        self.conv = nn.Conv2d(in_channels, out_channels, 1)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        y = self.inner(x)
        return self.bn(self.conv(y)) if bool(y.abs().sum() > 0) else y


class SharedOutputBlock(Block):
    """The convolution's output also feeds the residual sum: folding would change that sum."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__(in_channels, out_channels, stride)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


def test_only_pairs_the_trace_vouches_for_are_folded():
    classes = {("stem", "plain"): PlainStem, ("block", "untraceable"): UntraceableBlock,
               ("block", "shared"): SharedOutputBlock, ("head", "classifier"): ClassifierHead}
    spec = ModelSpec(Component("plain"), (StageSpec("untraceable", out_channels=8), StageSpec("shared", out_channels=8)),
                     Component("classifier"), ModelMeta(family="test", num_classes=3, input_size=(3, 16, 16)))
    model = build(spec, lambda kind, name: classes[kind, name]).eval()
    randomise_batchnorms(model)
    x = torch.randn(2, 3, 16, 16)
    with torch.inference_mode():
        expected = model(x)
        model.fuse()
        assert max_difference(model(x), expected) <= TOLERANCE
    untraceable, shared = model.stages[0][0], model.stages[1][0]
    assert isinstance(model.stem.bn, nn.Identity) and model.stem.conv.bias is not None
    assert isinstance(untraceable.inner.bn, nn.Identity)  # its child traced and folded
    assert isinstance(untraceable.bn, nn.BatchNorm2d)  # in the untraceable forward itself: left alone
    assert isinstance(shared.bn, nn.BatchNorm2d)
