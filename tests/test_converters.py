"""Key-map helpers every converter uses."""

import pytest
import torch

from registry_core import ConversionError, invert_prefixes, rename_prefixes

STATE = {"conv1.weight": torch.ones(1), "layer1.0.conv1.weight": torch.zeros(1), "fc.bias": torch.ones(2)}
MAP = {"conv1.": "stem.conv.", "layer1.": "stages.0.", "fc.": "head.fc."}


def test_rename_uses_longest_prefix_and_keeps_tensors():
    out = rename_prefixes(STATE, {**MAP, "layer1.0.": "stages.0.first."})
    assert set(out) == {"stem.conv.weight", "stages.0.first.conv1.weight", "head.fc.bias"}
    assert out["head.fc.bias"] is STATE["fc.bias"]


def test_rename_round_trips_through_the_inverse():
    assert rename_prefixes(rename_prefixes(STATE, MAP), invert_prefixes(MAP)).keys() == STATE.keys()


def test_unmatched_keys_are_errors_unless_not_strict():
    with pytest.raises(ConversionError, match="fc.bias"):
        rename_prefixes(STATE, {"conv1.": "a.", "layer1.": "b."})
    assert "fc.bias" in rename_prefixes(STATE, {"conv1.": "a."}, strict=False)


def test_collisions_and_non_invertible_maps_are_errors():
    with pytest.raises(ConversionError, match="two keys"):
        rename_prefixes({"a.bias": torch.ones(1), "b.bias": torch.ones(1)}, {"a.": "x.", "b.": "x."})
    with pytest.raises(ValueError):
        invert_prefixes({"a.": "x.", "b.": "x."})


def test_registered_converters_are_public():
    import registry_core

    keys = registry_core.list_converters("torchvision/*")
    assert "torchvision/resnet50" in keys
    converter = registry_core.get_converter("torchvision", "resnet50")
    assert (converter.source, converter.model, converter.key) == ("torchvision", "resnet50", "torchvision/resnet50")
    with pytest.raises(registry_core.UnknownComponentError, match="converter"):
        registry_core.get_converter("torchvision", "resnet51")
