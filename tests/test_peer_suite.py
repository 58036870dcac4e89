"""What timm's and torchvision's own model test suites check, asked of every registered
model (a third party's included), in our words.

timm's ``tests/test_models.py`` builds each model and checks its forward and backward
pass, its default (pretrained) config, its features (``features_only`` and
``forward_intermediates``), and that it scripts, traces with ``torch.fx`` and exports.
torchvision's ``test_models.py`` checks classification outputs, scriptability and FX, and
``test_extended_models.py`` the schema of each weights entry's metadata. Forward,
backward, head reset, ``in_chans`` and the ``features_only`` channels are
``testing.check_model`` (``test_models.py``); TorchScript, FX, torchvision's feature
extractor and ``torch.export`` are ``testing.check_toolchain`` (``test_toolchain.py``).
This module adds the rest: the config names real modules, the headless outputs have the
advertised widths, intermediates agree with ``feature_info`` in shape and value, and
every weight tag keeps a metadata schema and builds what it describes.

Structure is checked on the meta device (no weights, no arithmetic), so it runs for
every model; values run where ``full_compute`` allows. Feature levels are checked
through ``feature_info``'s own answers, never through hard-coded counts.
"""

import functools
import math

import pytest
import torch
from compute_budget import full_compute, profile, representative
from torch import nn

import registry_core
from registry_core.model.compose import meta_device

MODELS = registry_core.list_models()
INTERPOLATIONS = {"nearest", "bilinear", "bicubic"}
METRICS = {"top1", "top5"}


@functools.cache
def on_meta(name: str, **options) -> registry_core.ComposedModel:
    """``name`` built on the meta device (cached: only read it, or build your own)."""
    with meta_device():
        return registry_core.create(name, **options).eval()


def meta_input(model: registry_core.ComposedModel, batch: int = 1) -> torch.Tensor:
    return torch.empty(batch, *model.meta.input_size, device="meta")


def channels_of(model: registry_core.ComposedModel, features: torch.Tensor) -> int:
    """The channel width of ``forward_features``'s output: maps carry it in dim 1, tokens last."""
    return features.shape[-1] if model.stage_info[-1].get("format", "NCHW") == "NLC" else features.shape[1]


@pytest.mark.parametrize("name", MODELS)
def test_pretrained_cfg_describes_the_built_model(name):
    """timm's default-config check: the config's module paths exist and fit the input and
    the classes; its preprocessing fits the input channels."""
    model = on_meta(name)
    cfg, modules = model.pretrained_cfg, dict(model.named_modules())
    channels = cfg["input_size"][0]
    assert cfg["architecture"] == name and cfg["num_classes"] == model.num_classes
    assert len(cfg["mean"]) == len(cfg["std"]) == channels == model.meta.input_size[0]
    assert cfg["interpolation"] in INTERPOLATIONS and 0 < cfg["crop_pct"] <= 1
    assert all(m <= s for m, s in zip(cfg["min_input_size"], cfg["input_size"], strict=True))
    first = modules[cfg["first_conv"]]
    assert isinstance(first, nn.Conv2d) and first.in_channels == channels
    classifier = modules[cfg["classifier"]]
    assert isinstance(classifier, nn.Linear) and classifier.out_features == model.num_classes
    grey = on_meta(name, in_chans=1)
    assert dict(grey.named_modules())[grey.pretrained_cfg["first_conv"]].in_channels == 1
    assert grey.pretrained_cfg["input_size"][0] == len(grey.pretrained_cfg["mean"]) == 1


@pytest.mark.parametrize("name", MODELS)
def test_features_heads_and_intermediates_agree_with_what_the_model_advertises(name):
    """timm's default-config and feature checks, in shape. ``num_features`` is the width
    of ``forward_features``, ``head_hidden_size`` that of the pre-logits and of a head
    with no classes, and ``global_pool=''`` with no classes gives the final map.
    ``forward_intermediates`` gives one map per ``feature_info`` level, with its
    channels, at no more than ``ceil(side / reduction)``, levels in order of reduction,
    and the final output ``forward_features`` gives; a ``features_only`` model gives the
    same maps for the levels it selects."""
    model, features_model = on_meta(name), on_meta(name, features_only=True)
    x = meta_input(model)
    info, side = model.feature_info, x.shape[-1]
    with torch.no_grad():
        features = model.forward_features(x)
        assert channels_of(model, features) == model.num_features
        assert model.forward_head(features, pre_logits=True).shape == (1, model.head_hidden_size)
        assert on_meta(name, num_classes=0).forward_head(features).shape == (1, model.head_hidden_size)
        assert on_meta(name, num_classes=0, global_pool="").forward_head(features).shape == features.shape
        final, maps = model.forward_intermediates(x, intermediates_only=False)
        selected = features_model(x)
    assert final.shape == features.shape and len(maps) == len(info)
    reductions = info.reduction()
    assert reductions == sorted(reductions) and [m.shape[1] for m in maps] == info.channels()
    for fmap, reduction in zip(maps, reductions, strict=True):
        assert 1 <= fmap.shape[-1] <= math.ceil(side / reduction)
    assert [m.shape[-1] for m in maps] == sorted((m.shape[-1] for m in maps), reverse=True)
    chosen = features_model.feature_info
    assert len(selected) == len(chosen) and set(chosen.module_name()) <= set(info.module_name())
    by_module = dict(zip(info.module_name(), maps, strict=True))
    assert [m.shape for m in selected] == [by_module[n].shape for n in chosen.module_name()]
    assert chosen.channels() == [m.shape[1] for m in selected]


@pytest.mark.parametrize("name", MODELS)
def test_intermediates_are_the_maps_the_forward_pass_computes(name):
    """The same, in value, on each family's representative: the final output is
    ``forward_features``'s, and a ``features_only`` model with the same weights gives
    the intermediates themselves."""
    full_compute(name)
    family = profile(name).family
    if representative(family) != name:
        pytest.skip(f"{name}: the {family} family's code is checked in value on {representative(family)}")
    torch.manual_seed(0)
    model = registry_core.create(name).eval()
    features_model = registry_core.create(name, features_only=True).eval()
    kept = features_model.state_dict()
    features_model.load_state_dict({k: v for k, v in model.state_dict().items() if k in kept})
    x = torch.randn(1, *model.meta.min_input_size)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x, intermediates_only=False)
        torch.testing.assert_close(final, model.forward_features(x), rtol=0, atol=0)
        by_module = dict(zip(model.feature_info.module_name(), maps, strict=True))
        for fmap, module in zip(features_model(x), features_model.feature_info.module_name(), strict=True):
            torch.testing.assert_close(fmap, by_module[module], rtol=0, atol=0)


def tags_of(name: str) -> list[str]:
    return registry_core.list_pretrained(f"{name}.*")


@pytest.mark.parametrize("name", [n for n in MODELS if tags_of(n)])
def test_weight_tags_keep_the_metadata_schema_and_build_what_they_describe(name):
    """torchvision's weights-metadata schema check, for our tags: labels, metrics, sources
    and data config are well formed and consistent; a model has one default tag at most;
    and the model a tag name builds has the tag's head, preprocessing and identity."""
    tags = [registry_core.pretrained_info(t) for t in tags_of(name)]
    assert sum(t["default"] for t in tags) <= 1
    channels = on_meta(name).meta.input_size[0]
    for tag in tags:
        where = tag["name"]
        assert tag["model"] == name and isinstance(tag["num_classes"], int) and tag["num_classes"] >= 0, where
        if tag["labels"] == "imagenet-1k":
            assert tag["num_classes"] == 1000, where
        elif isinstance(tag["labels"], list):
            assert len(tag["labels"]) == tag["num_classes"], where
        assert set(tag["metrics"]) <= METRICS and all(0 < v <= 100 for v in tag["metrics"].values()), where
        assert tag["sources"] and all(s["file"] or s["hub_id"] for s in tag["sources"]), where
        for source in tag["sources"]:
            if source["library"] == "torchvision":
                assert source["member"].isupper() and source["file"].endswith(".pth") and source["sha256"], where
            if source["hub_id"]:
                assert source["hub_id"] == f"timm/{source['model']}.{source['member']}", where
        assert len(tag["data_config"]["mean"]) == tag["data_config"]["input_size"][0] == channels, where
    for num_classes in {t["num_classes"] for t in tags}:  # one meta build per head the tags name
        tag = next(t for t in tags if t["num_classes"] == num_classes)
        model = on_meta(tag["name"])
        cfg = model.pretrained_cfg
        assert model.num_classes == num_classes and cfg["tag"] == tag["tag"] and cfg["license"] == tag["license"]
        assert cfg["hf_hub_id"] in {s["hub_id"] for s in tag["sources"]} | {""}
        data = tag["data_config"]
        assert (tuple(cfg["input_size"]), cfg["interpolation"], cfg["crop_pct"]) == \
            (tuple(data["input_size"]), data["interpolation"], data["crop_pct"])
