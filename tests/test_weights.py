"""Saving and loading our weights files: round trips, metadata, adaptation, strictness, atomicity."""

import importlib.metadata
import json
import os
import sys
from dataclasses import replace
from itertools import chain
from pathlib import Path

import components
import pytest
import torch
from components import make_plugin
from compute_budget import full_compute
from safetensors.torch import save_file
from torch import nn

import registry_core
from registry_core import Block, Component, Stem, WeightsError, create, hookimpl, list_models, load, read_metadata, save
from registry_core.cli import main
from registry_core.model.compose import meta_device
from registry_core.weights import safetensors_io
from registry_core.weights.adapt import first_conv, prepare_state


def state_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def no_meta(model: nn.Module) -> bool:
    return not any(t.is_meta for t in chain(model.parameters(), model.buffers()))


@pytest.fixture
def lenet_file(tmp_path):
    torch.manual_seed(0)
    model = create("lenet5")
    path = tmp_path / "lenet5.safetensors"
    save(model, path)
    return model, path


def filled(name: str) -> nn.Module:
    """``create(name)`` with each tensor set to its own constant: cheap even for the
    largest models, and any mix-up of keys or tensors shows."""
    with meta_device():
        model = create(name)
    model.to_empty(device="cpu")
    with torch.no_grad():
        for i, tensor in enumerate(model.state_dict().values()):
            tensor.fill_(i + 1)
    return model


@pytest.mark.parametrize("name", list_models())
def test_round_trip_for_every_registered_model(name, tmp_path):
    full_compute(name)
    model = filled(name)
    path = tmp_path / f"{name}.safetensors"
    save(model, path)
    for loaded in (load(path), create(name, weights=path)):
        assert loaded.model_name == name
        assert state_equal(loaded, model)
        assert no_meta(loaded)


def test_loading_maps_the_file_and_initialises_nothing(lenet_file):
    model, path = lenet_file
    torch.manual_seed(1)
    expected_next = torch.rand(3)
    torch.manual_seed(1)
    loaded = create("lenet5", weights=path)
    assert torch.equal(torch.rand(3), expected_next), "loading consumed random numbers: something was initialised"
    if sys.platform.startswith("linux"):
        real = os.path.realpath(path)
        ranges = [
            tuple(int(x, 16) for x in line.split()[0].split("-"))
            for line in Path("/proc/self/maps").read_text().splitlines()
            if line.endswith(real)
        ]
        copied = [n for n, p in loaded.named_parameters() if not any(lo <= p.data_ptr() < hi for lo, hi in ranges)]
        assert ranges and not copied, f"not memory-mapped from the file: {copied}"


def test_metadata_records_how_to_rebuild_and_feed_the_model(tmp_path):
    torch.manual_seed(0)
    model = create("resnet18", num_classes=7, in_chans=1, head="mlp", drop_rate=0.1)
    path = tmp_path / "r.safetensors"
    save(model, path, metadata={"epoch": "3", "top1": "0.5"})
    header = read_metadata(path)
    assert header["format"] == "pt"
    assert header["registry_core"] == registry_core.__version__
    assert header["model"] == "resnet18"
    assert json.loads(header["create_kwargs"]) == {"num_classes": 7, "in_chans": 1, "head": "mlp", "drop_rate": 0.1}
    assert (header["num_classes"], header["in_chans"], header["aux_heads"]) == ("7", "1", "0")
    assert header["plugin"] == "registry-resnet"
    assert header["plugin_version"] == importlib.metadata.version("registry-resnet")
    meta = model.meta
    assert json.loads(header["input_size"]) == list(meta.input_size) == [1, 224, 224]
    assert json.loads(header["mean"]) == pytest.approx(meta.mean) and json.loads(header["std"]) == pytest.approx(meta.std)
    assert (header["interpolation"], float(header["crop_pct"])) == (meta.interpolation, meta.crop_pct)
    assert (header["epoch"], header["top1"]) == ("3", "0.5")

    rebuilt = load(path)
    assert type(rebuilt.head) is type(model.head) and rebuilt.num_classes == 7
    x = torch.randn(1, 1, 64, 64)
    torch.testing.assert_close(rebuilt.eval()(x), model.eval()(x))


def test_metadata_says_whether_aux_heads_are_on(tmp_path):
    for aux_logits, count in ((True, "2"), (False, "0")):
        path = tmp_path / f"g{aux_logits}.safetensors"
        save(create("googlenet", aux_logits=aux_logits), path)
        assert read_metadata(path)["aux_heads"] == count
        assert len(load(path).aux_heads) == int(count)


def test_extra_metadata_must_be_strings_and_not_replace_ours(tmp_path):
    model = create("lenet5")
    with pytest.raises(WeightsError, match="model"):
        save(model, tmp_path / "a.safetensors", metadata={"model": "other"})
    with pytest.raises(WeightsError, match="epoch"):
        save(model, tmp_path / "b.safetensors", metadata={"epoch": 3})
    with pytest.raises(WeightsError, match="registry_core.create"):
        save(nn.Linear(2, 2), tmp_path / "c.safetensors")
    assert not list(tmp_path.iterdir())


def test_other_num_classes_gets_a_fresh_initialised_head(lenet_file):
    model, path = lenet_file
    with pytest.warns(UserWarning, match="head reset for 3 classes"):
        tuned = create("lenet5", weights=path, num_classes=3)
    fc = tuned.head.fc.weight
    assert fc.shape == (3, 84) and fc.device.type == "cpu" and no_meta(tuned)
    bound = 1 / 84 ** 0.5  # nn.Linear's default uniform init
    assert fc.abs().max() <= bound and fc.std() > bound / 10
    kept = {k: v for k, v in model.state_dict().items() if not k.startswith("head.fc.")}
    assert all(torch.equal(tuned.state_dict()[k], v) for k, v in kept.items())
    with pytest.warns(UserWarning, match="head reset"):
        assert load(path, num_classes=3).num_classes == 3


def test_aux_heads_are_reset_with_the_main_head(tmp_path):
    path = tmp_path / "g.safetensors"
    save(create("googlenet"), path)
    with pytest.warns(UserWarning, match="head reset for 5 classes"):
        model = create("googlenet", weights=path, num_classes=5).train()
    out = model(torch.randn(2, 3, 96, 96))
    assert out.logits.shape == (2, 5) and all(aux.shape == (2, 5) for aux in out.aux)


def test_unset_num_classes_and_in_chans_follow_the_file(tmp_path, recwarn):
    path = tmp_path / "tuned.safetensors"
    save(create("lenet5", num_classes=3, in_chans=2), path)
    model = create("lenet5", weights=path)
    assert (model.num_classes, model.meta.input_size[0]) == (3, 2)
    assert not recwarn.list


def test_in_chans_adaptation_keeps_the_response(fresh_host, tmp_path):
    fresh_host(make_plugin())
    torch.manual_seed(0)
    rgb = create("tiny").eval()
    path = tmp_path / "tiny.safetensors"
    save(rgb, path)
    x = torch.randn(2, 1, 32, 32)
    with pytest.warns(UserWarning, match="adapted from 3 to 1 input channels"):
        gray = create("tiny", weights=path, in_chans=1).eval()
    torch.testing.assert_close(gray(x), rgb(x.expand(-1, 3, -1, -1)))
    with pytest.warns(UserWarning, match="adapted from 3 to 6 input channels"):
        six = create("tiny", weights=path, in_chans=6).eval()
    colour = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(six(torch.cat([colour, colour], 1)), rgb(colour))
    assert six.meta.input_size[0] == 6 and not six.stem.conv.weight.is_meta


def timm_first_conv_key(name: str) -> str | None:
    """Our key of the weight timm's ``pretrained_cfg["first_conv"]`` names, through our
    timm converter (the tensor object is followed through the renaming); None when timm
    lacks the model."""
    timm = pytest.importorskip("timm")
    if not timm.is_model(name) or f"timm/{name}" not in registry_core.list_converters():
        return None
    with torch.device("meta"):
        source = timm.create_model(name, pretrained=False)
    state = source.state_dict()
    target = state[f"{source.pretrained_cfg['first_conv']}.weight"]
    converted = registry_core.get_converter("timm", name).to_ours(state)
    return next(key for key, tensor in converted.items() if tensor is target)


@pytest.mark.parametrize("name", list_models())
def test_the_first_convolution_is_found_and_adapted_as_timm_does(name):
    """For every model: the convolution the image enters (in VGG a block's, its stem
    being empty) takes the adapted weight, equal to timm's ``adapt_input_conv``; for a
    model timm has, it is the layer timm's own metadata names."""
    timm = pytest.importorskip("timm")
    with meta_device():
        rgb = create(name)
    key, conv = first_conv(rgb)
    base = rgb.meta.input_size[0]
    assert conv.in_channels == base and conv.groups == 1
    expected_key = timm_first_conv_key(name)
    if expected_key is not None:
        assert f"{key}.weight" == expected_key
    weight = torch.randn(conv.weight.shape, generator=torch.Generator().manual_seed(0))
    for chans in sorted({1, 2, 4, 6} - {base}):
        with meta_device():
            model = create(name, in_chans=chans)
        state = {f"{key}.weight": weight}
        notes = prepare_state(model, state, base, "file.safetensors")
        assert notes == [f"file.safetensors: {key}.weight adapted from {base} to {chans} input channels"]
        adapted = state[f"{key}.weight"]
        assert adapted.shape == model.get_submodule(key).weight.shape
        assert torch.equal(adapted, timm.models.adapt_input_conv(chans, weight, base_chans=base))


def test_vgg_loads_a_file_with_other_input_channels(tmp_path):
    """VGG's stem is empty: the first convolution is stages.0.0.conv (timm's features.0).
    A features-only file keeps this cheap; the head plays no part in adaptation."""
    torch.manual_seed(0)
    rgb = create("vgg11_bn", features_only=True).eval()
    path = tmp_path / "vgg11_bn.safetensors"
    save(rgb, path)
    colour = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = rgb(colour)[-1]
        for chans in (1, 2, 4, 6):
            with pytest.warns(UserWarning, match=f"stages.0.0.conv.weight adapted from 3 to {chans} input channels"):
                model = create("vgg11_bn", weights=path, in_chans=chans).eval()
            assert model.stages[0][0].conv.in_channels == chans and no_meta(model)
            if chans == 1:
                grey = colour.mean(1, keepdim=True)
                torch.testing.assert_close(model(grey)[-1], rgb(grey.expand(-1, 3, -1, -1))[-1])
            if chans == 6:
                torch.testing.assert_close(model(torch.cat([colour, colour], 1))[-1], expected)


class SideBranchStem(Stem):
    """A stem whose first convolution runs on a learned map, not on the image; the
    spec must name the one that takes the image."""

    def __init__(self, in_chans, out_channels=8):
        super().__init__(in_chans, out_channels, reduction=2)
        self.position = nn.Parameter(torch.zeros(1, 2, 4, 4))
        self.embed = nn.Conv2d(2, out_channels, 1)
        self.conv = nn.Conv2d(in_chans, out_channels, 3, stride=2, padding=1)

    def forward(self, x):
        bias = nn.functional.interpolate(self.embed(self.position), size=(x.shape[-2] + 1) // 2)
        return self.conv(x) + bias


def side_branch(first_conv: str):
    def build():
        spec = components.tiny()
        return replace(spec, stem=Component("side_branch_stem"), meta=replace(spec.meta, first_conv=first_conv))

    return build


class SideBranchPlugin:
    @hookimpl
    def register_stems(register):
        register("side_branch_stem", SideBranchStem)

    @hookimpl
    def register_models(register):
        register("side_named", side_branch("stem.conv"))
        register("side_unnamed", side_branch(""))
        register("side_misnamed", side_branch("stem.position"))


def test_a_spec_names_its_first_convolution_when_forward_order_would_mislead(fresh_host, tmp_path):
    fresh_host(make_plugin())
    fresh_host(SideBranchPlugin, "side-branch")
    for name in ("side_named", "side_unnamed", "side_misnamed"):
        save(create(name), tmp_path / f"{name}.safetensors")
    with pytest.warns(UserWarning, match="stem.conv.weight adapted from 3 to 1"):
        gray = create("side_named", weights=tmp_path / "side_named.safetensors", in_chans=1)
    assert gray.stem.conv.in_channels == 1 and gray.stem.embed.in_channels == 2
    with pytest.raises(WeightsError, match="cannot adapt stem.embed.weight from 3 to 1"):
        create("side_unnamed", weights=tmp_path / "side_unnamed.safetensors", in_chans=1)
    with pytest.raises(WeightsError, match="names 'stem.position' as the first convolution"):
        create("side_misnamed", weights=tmp_path / "side_misnamed.safetensors", in_chans=1)


def test_features_only_loads_everything_but_the_head(lenet_file):
    model, path = lenet_file
    features = create("lenet5", weights=path, features_only=True)
    assert features.head is None
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in features.state_dict().items())


def test_strict_load_lists_missing_unexpected_and_misshaped_keys(lenet_file, tmp_path):
    model, path = lenet_file
    state = {k: v.clone() for k, v in model.state_dict().items()}
    del state["head.fc.bias"]
    state["stages.0.0.extra.weight"] = torch.zeros(2)
    state["head.hidden.1.weight"] = torch.zeros(84, 7)
    bad = tmp_path / "bad.safetensors"
    save_file(state, bad, metadata=read_metadata(path))
    with pytest.raises(WeightsError) as info:
        create("lenet5", weights=bad)
    message = str(info.value)
    assert "1 missing: head.fc.bias" in message
    assert "1 unexpected: stages.0.0.extra.weight" in message
    assert "head.hidden.1.weight (file (84, 7), model (84, 120))" in message


def test_long_key_listings_are_cut_with_a_count(tmp_path):
    save_file({f"junk.{i}": torch.zeros(1) for i in range(20)}, tmp_path / "junk.safetensors")
    with pytest.raises(WeightsError, match=r"20 unexpected: junk\.\d+, .* \.\.\. and 8 more"):
        create("lenet5", weights=tmp_path / "junk.safetensors")


def test_a_file_for_another_architecture_is_refused(lenet_file):
    _, path = lenet_file
    with pytest.raises(WeightsError, match="holds weights for 'lenet5', not 'resnet18'"):
        create("resnet18", weights=path)


def test_unset_options_follow_the_file_and_conflicting_ones_are_explained(tmp_path):
    path = tmp_path / "g.safetensors"
    save(create("googlenet", aux_logits=False, transform_input=True), path)
    model = create("googlenet", weights=path)
    assert len(model.aux_heads) == 0 and model.create_kwargs["transform_input"] is True
    with pytest.raises(WeightsError, match=r"missing: aux_heads\..*create\('googlenet', aux_logits=False, transform_input=True\)"):
        create("googlenet", weights=path, aux_logits=True)


def test_a_failed_write_leaves_the_previous_file_intact(lenet_file, monkeypatch):
    model, path = lenet_file
    before = path.read_bytes()

    def crash_midway(tensors, filename, metadata=None):
        Path(filename).write_bytes(before[: len(before) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(safetensors_io, "save_file", crash_midway)
    with torch.no_grad():
        model.head.fc.bias.add_(1)
    with pytest.raises(OSError, match="disk full"):
        save(model, path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]


class ScaledBlock(Block):
    """A block whose constant lives in a non-persistent buffer (in no state dict)."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.register_buffer("scale", torch.full((1,), 2.0), persistent=False)

    def forward(self, x):
        return self.conv(x) * self.scale


class ScaledPlugin:
    @hookimpl
    def register_blocks(register):
        register("scaled", ScaledBlock)


def test_non_persistent_buffers_get_their_real_values(fresh_host, tmp_path):
    fresh_host(make_plugin())
    fresh_host(ScaledPlugin, "scaled-plugin")
    model = create("tiny", block="scaled").eval()
    path = tmp_path / "s.safetensors"
    save(model, path)
    loaded = load(path).eval()
    assert no_meta(loaded) and loaded.stages[0][0].scale.item() == 2.0
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(loaded(x), model(x))


def test_info_prints_a_weights_files_metadata(lenet_file, capsys):
    _, path = lenet_file
    assert main(["info", str(path)]) == 0
    fields = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert fields["model"] == "lenet5" and fields["plugin"] == "registry-lenet" and fields["num_classes"] == "10"
