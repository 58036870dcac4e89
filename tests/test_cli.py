"""The `registry-core` command, run as a user runs it: in a subprocess."""

import json
import os
import subprocess
import sys

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
    assert records["registry-core"]["provided"]["head"] == ["classifier", "mlp"]
    assert "register_models" in records["lenet"]["hooks"]
    text = run("plugins").stdout
    assert "registry-lenet" in text and "[ok]" in text


def test_unknown_model_is_one_line_exit_2_no_traceback():
    result = run("info", "lenet6")
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
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
