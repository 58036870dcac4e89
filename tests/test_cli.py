"""The `registry-core` command, run as a user runs it: in a subprocess (or, for the many
ways a user can get it wrong, through ``main`` in this process): every user error is one
line and exit code 2, and help answers without importing torch."""

import json
import os
import subprocess
import sys

import pytest

import registry_core


def run(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "registry_core", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_list_shows_name_family_params_plugin():
    result = run("list", "lenet*")
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()[:2]
    assert header.split() == ["name", "family", "params", "plugin"]
    assert row.split()[:4] == ["lenet5", "lenet", "61,706", "registry-lenet"]


def test_list_everything_matches_api():
    result = run("list")
    listed = [line.split()[0] for line in result.stdout.splitlines()[1:]]
    assert listed == registry_core.list_models()


def test_info_prints_model_metadata():
    result = run("info", "lenet5")
    assert result.returncode == 0
    fields = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert fields["params"] == "61706" and fields["distribution"] == "registry-lenet"


def test_plugins_json_lists_every_plugin_with_hooks_and_provisions():
    result = run("plugins", "--json")
    records = {r["name"]: r for r in json.loads(result.stdout)}
    assert records["lenet"]["provided"]["model"] == ["lenet5"]
    assert records["registry-core"]["provided"]["head"] == ["classifier", "mlp", "token_classifier"]
    assert records["registry-core"]["provided"]["block"] == ["layer_norm"]
    assert "register_models" in records["lenet"]["hooks"]
    text = run("plugins").stdout
    assert "registry-lenet" in text and "[ok]" in text


def test_unknown_model_is_one_line_exit_2_no_traceback():
    result = run("info", "lenet6")
    assert result.returncode == 2
    (line,) = [line for line in result.stderr.splitlines() if not line.startswith("registry-core: indexed")]
    assert line.startswith("registry-core: error: unknown model 'lenet6'; did you mean 'lenet5'")
    assert "Traceback" not in result.stderr


def test_bad_usage_exits_2():
    result = run("frobnicate")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_console_script_is_installed():
    script = os.path.join(os.path.dirname(sys.executable), "registry-core")
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == f"registry-core {registry_core.__version__}"


def test_restricting_plugins_from_the_environment():
    result = run("list", env={"REGISTRY_CORE_PLUGINS": "registry-core"})
    assert result.returncode == 0 and "no model matches" in result.stdout


def test_list_reports_an_unbuildable_model_and_lists_the_rest(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "rc_test_needs_missing.py").write_text(
        "from registry_core import Component, ModelSpec, StageSpec, hookimpl\n"
        "@hookimpl\n"
        "def register_models(register):\n"
        "    register('needs_missing', ModelSpec(Component('no_such_stem'), (StageSpec('no_such_block', 1, 8),), Component('classifier')))\n"
    )
    info = site / "rc_test_needs_missing-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rc-test-needs-missing\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[registry_core]\nneeds_missing = rc_test_needs_missing\n")
    result = run("list", env={"PYTHONPATH": str(site)})
    assert result.returncode == 0
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert rows["needs_missing"][2] == "unavailable" and "lenet5" in rows
    assert "needs_missing: unknown stem 'no_such_stem'" in result.stderr


NO_TORCH = """
import sys
from registry_core.cli import main
for argv in {argvs!r}:
    try:
        main(argv)
    except SystemExit as done:
        assert done.code == (0 if "--help" in argv else 2), (argv, done.code)
    else:
        raise AssertionError(f"{{argv}} did not exit")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {{"torch", "numpy", "safetensors", "pluggy"}})
assert not heavy, heavy
print("ok")
"""


def test_help_and_usage_errors_answer_without_importing_torch():
    argvs = [["--help"], ["train", "--help"], ["eval", "--help"], ["new-plugin", "--help"], ["convert", "--help"],
             ["train", "--epochs", "many"], ["frobnicate"], ["eval", "--split", "most"]]
    result = subprocess.run([sys.executable, "-c", NO_TORCH.format(argvs=argvs)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.splitlines()[-1] == "ok", result.stderr[-3000:]


def test_no_gpu_is_one_line_saying_so_in_a_real_process():
    result = run("train", "--model", "lenet5", "--dataset", "digits", "--max-steps", "1", "--out", "unused", "--device", "cuda",
                 env={"CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert "there is no GPU here" in line and not os.path.exists("unused")


@pytest.fixture
def no_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.mark.parametrize("args, message", [
    (["train", "--model", "resnet18", "--dataset", "fake", "--model-opt", "drop_rate=abc", "--out", "{tmp}/run"],
     "drop_rate: model 'resnet18' takes a number (default 0.0), got 'abc'"),
    (["train", "--model", "lenet5", "--dataset", "digits", "--device", "cuda:0", "--out", "{tmp}/run"], "'cuda:0' asked for, but there is no GPU here"),
    (["train", "--model", "lenet5", "--dataset", "digits", "--device", "cuda", "--out", "{tmp}/run"], "'cuda' asked for, but there is no GPU here"),
    (["train", "--model", "lenet5", "--dataset", "digits", "--out", "{tmp}/done"], "{tmp}/done already holds a run; continue it with --resume {tmp}/done"),
    (["convert", "--from", "torchvision", "--model", "resnet18", "--checkpoint", "{tmp}/missing.pth", "--out", "{tmp}/folder"],
     "cannot write {tmp}/folder: it is a folder"),
    (["new-plugin", "registry-unwritable", "--dir", "{tmp}/file/plugin"], "cannot write {tmp}/file/plugin/pyproject.toml"),
    (["eval", "--weights", "{tmp}/done/last.safetensors", "--device", "cuda:1", "--dataset", "digits"], "there is no GPU here"),
])
def test_user_errors_are_one_line_and_exit_2(args, message, tmp_path, capsys, no_gpu):
    from registry_core.cli import main

    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("in the way")
    done = tmp_path / "done"
    done.mkdir()
    (done / "trainer_state.safetensors").write_bytes(b"")
    if "eval" in args:
        registry_core.save(registry_core.create("lenet5"), done / "last.safetensors")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("registry-core: error: ") and len(err.strip().splitlines()) == 1
    assert message.replace("{tmp}", str(tmp_path)) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["done", "file", "folder"]  # nothing written on the way


def test_a_gpu_index_beyond_the_machine_s_is_refused(monkeypatch):
    import torch

    from registry_core.training.distributed import Distributed

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(registry_core.TrainingError, match="'cuda:3' asked for, but this machine has 1 GPU"):
        Distributed.single("cuda:3")


@pytest.mark.parametrize("options, parameter", [
    ({"num_classes": "10"}, "num_classes"),
    ({"in_chans": 2.0}, "in_chans"),
    ({"num_classes": True}, "num_classes"),
    ({"head": registry_core.Component("mlp")}, "head"),
    ({"block": object}, "block"),
    ({"act": 3}, None),
])
def test_bad_create_arguments_are_registry_core_errors(options, parameter):
    if parameter is None:  # a str option: what the builder does with it is the builder's business
        with pytest.raises(registry_core.RegistryCoreError):
            registry_core.create("lenet5", **options)
        return
    with pytest.raises(registry_core.InvalidOverrideError) as caught:
        registry_core.create("lenet5", **options)
    assert caught.value.parameter == parameter and isinstance(caught.value, registry_core.RegistryCoreError)

