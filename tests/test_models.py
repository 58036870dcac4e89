"""Every registered model, a third party's included, keeps the model contract."""

import pytest

import registry_core
from registry_core import testing


@pytest.mark.parametrize("name", registry_core.list_models())
def test_model_contract(name):
    testing.check_model(name)


@pytest.mark.parametrize("name", registry_core.list_models())
def test_model_info_is_complete(name):
    info = registry_core.model_info(name)
    assert info["params"] > 0 and info["gflops"] > 0
    assert info["distribution"] and info["family"]
    assert len(info["mean"]) == len(info["std"]) == info["input_size"][0]
    assert all(m <= s for m, s in zip(info["min_input_size"][1:], info["input_size"][1:]))
