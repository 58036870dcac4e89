"""Every registered model, a third party's included, keeps the model contract."""

import functools
import importlib.util

import pytest
import torch
from compute_budget import full_compute

import registry_core
from registry_core import InputSizeError, testing
from registry_core.model.compose import meta_device


@pytest.mark.parametrize("name", registry_core.list_models())
def test_model_contract(name):
    full_compute(name)
    testing.check_model(name)


@pytest.mark.parametrize("name", registry_core.list_models())
def test_model_info_is_complete(name):
    info = registry_core.model_info(name)
    assert info["params"] > 0 and info["gflops"] > 0
    assert info["distribution"] and info["family"]
    assert len(info["mean"]) == len(info["std"]) == info["input_size"][0]
    assert all(m <= s for m, s in zip(info["min_input_size"][1:], info["input_size"][1:]))


@pytest.mark.parametrize("name", registry_core.list_models())
def test_min_input_size_is_the_true_minimum(name):
    """At ``min_input_size`` the model runs (``check_model`` above also trains there on
    the CPU); one pixel less, its own layers fail, and ``forward`` says so with our error.
    A model with a fixed input size (a ViT) refuses a larger image the same way."""
    with meta_device():
        model = registry_core.create(name).eval()
    chans, height, width = model.meta.min_input_size
    wrong = [(height - 1, width), (height, width - 1)]
    if model.meta.fixed_input_size:
        wrong += [(height + model.stage_info[0]["reduction"], width)]
    with torch.no_grad():
        assert model(torch.empty(1, chans, height, width, device="meta")).shape == (1, model.num_classes)
        for size in wrong:
            x = torch.empty(1, chans, *size, device="meta")
            with pytest.raises(RuntimeError):
                model.forward_head(model.forward_features(x))  # the layers alone, without the check
            expected = f"exactly {height}x{width}" if model.meta.fixed_input_size else f"at least {height}x{width}"
            with pytest.raises(InputSizeError, match=expected):
                model(x)


def test_a_too_small_input_is_a_one_line_error_for_a_features_model_too():
    model = registry_core.create("vgg11", features_only=True)
    with pytest.raises(InputSizeError, match="vgg11 takes images of at least 32x32 pixels .* got 31x40"):
        model(torch.randn(1, 3, 31, 40))
    assert len(model(torch.randn(1, 3, 32, 40))) == 6  # timm's levels: five pre-pool maps and the last pool's


@pytest.mark.parametrize("name", registry_core.list_models())
def test_parameter_counts_with_and_without_aux_heads(name):
    """``params`` counts the auxiliary heads, ``params_inference`` does not; torchvision's
    metadata gives one or the other (googlenet's weights drop the heads, inception_v3's
    keep them), timm's models never have them."""
    info = registry_core.model_info(name, flops=False)
    with meta_device():
        model = registry_core.create(name)
    aux = sum(p.numel() for p in model.aux_heads.parameters())
    assert (info["params"], info["params_inference"]) == (sum(p.numel() for p in model.parameters()), info["params"] - aux)
    if info["aux_heads"]:
        assert aux > 0
        with meta_device():
            assert sum(p.numel() for p in registry_core.create(name, aux_logits=False).parameters()) == info["params_inference"]
    torchvision_count = torchvision_counts().get(name)
    if torchvision_count is not None:
        assert torchvision_count == info["params_inference" if name == "googlenet" else "params"]
    if importlib.util.find_spec("timm"):
        import timm

        if timm.is_model(name):
            with torch.device("meta"):
                assert sum(p.numel() for p in timm.create_model(name, pretrained=False).parameters()) == info["params_inference"]


@functools.cache
def torchvision_counts() -> dict[str, int]:
    """torchvision's recorded parameter count for each model it shares with us, from its
    default weights, or where those were made for larger images than the model's
    default (vit_h_14's SWAG weights, at 518 pixels), from the first that were not."""
    if not importlib.util.find_spec("torchvision"):
        return {}
    from torchvision.models import get_model_weights, list_models

    counts = {}
    for name in set(list_models()) & set(registry_core.list_models()):
        side = registry_core.model_info(name, flops=False)["input_size"][-1]
        weights = [get_model_weights(name).DEFAULT, *get_model_weights(name)]
        counts[name] = next(w for w in weights if w.meta["min_size"][-1] <= side).meta["num_params"]
    return counts


@pytest.mark.parametrize("name", registry_core.list_models())
def test_feature_info_answers_timms_calls_and_keeps_its_dicts(name):
    with meta_device():
        info = registry_core.create(name, features_only=True).feature_info
    assert info.channels() == [f["channels"] for f in info] and info.reduction() == [f["reduction"] for f in info]
    assert info.module_name() == [f["module"] for f in info] and info.channels(-1) == info[-1]["channels"]
    assert info.get_dicts() == list(info)
