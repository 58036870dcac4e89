"""One validation of every argument: bad values are our own one-line errors, the same
through the API and the command line, and nothing pathological runs for long."""

import argparse
import time

import pytest

import registry_core
from registry_core import InvalidOverrideError
from registry_core.arguments import check_number, check_path, check_pattern, for_cli
from registry_core.cli import main


@pytest.mark.parametrize("call, parameter", [
    (lambda: registry_core.list_models(None), "pattern"),
    (lambda: registry_core.list_models("[" * 50_000 + "a"), "pattern"),
    (lambda: registry_core.list_models(family=5), "family"),
    (lambda: registry_core.list_models(max_gflops=float("nan")), "max_gflops"),
    (lambda: registry_core.list_models(max_params=-1), "max_params"),
    (lambda: registry_core.list_models(input_size=2.5), "input_size"),
    (lambda: registry_core.list_models(sort="speed"), "sort"),
    (lambda: registry_core.list_components("block", ["*"]), "pattern"),
    (lambda: registry_core.model_info(None), "name"),
])
def test_bad_api_arguments_are_invalid_override_errors_naming_the_parameter(call, parameter):
    started = time.perf_counter()
    with pytest.raises(InvalidOverrideError) as caught:
        call()
    assert caught.value.parameter == parameter and time.perf_counter() - started < 30


@pytest.mark.parametrize("argv", [["list", "--max-gflops", "nan"], ["list", "[" * 5000], ["list", "--max-params", "-5"]])
def test_bad_cli_values_are_one_line_and_exit_2(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exited:  # argparse's own refusal
        code = exited.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) <= 2


def test_numbers_must_be_real_finite_and_in_range():
    assert check_number(3, "n", minimum=1, integer=True) == 3 and check_number(0.5, "p", minimum=0, maximum=1) == 0.5
    for value, bounds in [(float("nan"), {}), (float("inf"), {}), (True, {}), ("1", {}), (-1, {"minimum": 0}),
                          (0, {"above": 0}), (2, {"maximum": 1}), (1.5, {"integer": True})]:
        with pytest.raises(InvalidOverrideError, match="^lr: "):
            check_number(value, "lr", **bounds)


def test_paths_and_patterns_are_checked():
    assert str(check_path("runs/a", "out")) == "runs/a"
    for bad in ("", "  ", None, 5):
        with pytest.raises(InvalidOverrideError, match="^out: must be a path"):
            check_path(bad, "out")
    assert check_pattern("res*") == "res*"


def test_for_cli_gives_argparse_the_same_words():
    positive = for_cli(check_number, float, above=0)
    assert positive("0.1") == 0.1
    for text, said in (("nan", "finite"), ("0", "above 0"), ("fast", "must be a number")):
        with pytest.raises(argparse.ArgumentTypeError, match=said):
            positive(text)


@pytest.mark.parametrize("argv, said", [
    (["export", "--model", "lenet5", "--format", "onnx", "--image-size", "100000", "--out", "{tmp}/m.onnx"],
     "--image-size: must be at most 8192"),
    (["export", "--model", "lenet5", "--format", "onnx", "--opset", "999", "--out", "{tmp}/m.onnx"], "--opset: must be at most"),
    (["export", "--model", "lenet5", "--atol", "nan", "--out", "{tmp}/m.pt"], "--atol: must be a finite number"),
    (["convert", "--from", "torchvision", "--checkpoint", "{tmp}/none.pth", "--verify-size", "-5", "--out", "{tmp}/o.safetensors"],
     "--verify-size: must be at least 1"),
    (["convert", "--from", "torchvision", "--checkpoint", "{tmp}/none.pth", "--verify-size", "0", "--out", "{tmp}/o.safetensors"],
     "--verify-size: must be at least 1"),
    (["predict", "--model", "lenet5", "--pretrained", "{tmp}/x.png", "--batch-size", "-5"], "--batch-size: must be at least 1"),
])
def test_command_options_out_of_range_are_refused_before_any_work(argv, said, tmp_path, capsys):
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert said in err and len(err.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []


def test_api_calls_with_bad_values_raise_our_errors(tmp_path):
    import json

    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from registry_core import DataError, UnknownNameError, WriteError

    model = registry_core.create("lenet5")
    path = registry_core.save(model, tmp_path / "lenet5.safetensors")
    for call, parameter in ((lambda: registry_core.create(None), "name"), (lambda: registry_core.load(None), "path"),
                            (lambda: registry_core.load(path, num_classes=-3), "num_classes"),
                            (lambda: registry_core.create("lenet5", in_chans=0), "in_chans"),
                            (lambda: model.reset_classifier(-1), "num_classes")):
        with pytest.raises(InvalidOverrideError) as caught:
            call()
        assert caught.value.parameter == parameter
    with pytest.raises(WriteError, match="cannot write"):
        registry_core.save(model, tmp_path / ("a" * 300 + ".safetensors"))
    with pytest.raises(UnknownNameError, match="sources with converters: timm, torchvision"):
        registry_core.identify_checkpoint(path, source="evil")
    with pytest.raises(DataError, match="C x H x W"):
        registry_core.transforms(model)(torch.rand(1, 1, 1, 32, 32))
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    odd = tmp_path / "odd_classes.safetensors"
    save_file(load_file(path), odd, metadata={**metadata, "classes": json.dumps([1, {"a": 2}, None, *"xxxxxxx"])})
    with pytest.warns(UserWarning, match="not a list of names"):
        assert registry_core.load(odd).class_names is None
