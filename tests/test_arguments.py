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
