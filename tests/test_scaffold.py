"""``registry-core new-plugin``: names, refusals, and a skeleton that installs and passes
its own test as generated (awkward names included), and whose test fails, never skips,
when the plugin is disabled or broken."""

import json
import subprocess

import pytest
from installed_plugins import PIP, run_python

from registry_core import list_models
from registry_core.cli import main
from registry_core.errors import ScaffoldError
from registry_core.plugins import default_host
from registry_core.scaffold import PluginNames, render

NAME = "registry-tiny-gate"
AWKWARD = ["registry-2fast", "Fancy.Conv-2", "registry-tensor"]  # a leading digit, dots and dashes, a taken class name
TESTS_EACH = 4 if "resnet18" in list_models() else 3


@pytest.fixture(scope="module")
def skeleton(tmp_path_factory):
    """(skeleton folders by name, site folder): skeletons written by the command, then
    installed together, as pip would."""
    tmp = tmp_path_factory.mktemp("scaffold")
    folders = {name: tmp / "src" / name for name in [NAME, *AWKWARD]}
    for name, folder in folders.items():
        assert main(["new-plugin", name, "--dir", str(folder)]) == 0
    done = subprocess.run([*PIP, "--target", str(tmp / "site"), *map(str, folders.values())], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return folders, tmp / "site"


def test_names_derive_from_the_distribution_name():
    assert PluginNames.from_name("registry-cool-block") == PluginNames("registry-cool-block", "registry_cool_block", "cool_block", "CoolBlock")
    assert PluginNames.from_name("Fancy.Conv") == PluginNames("Fancy.Conv", "fancy_conv", "fancy_conv", "FancyConv")


@pytest.mark.parametrize("name, package, block, cls", [
    ("registry-2fast", "registry_2fast", "2fast", "Block2Fast"),
    ("registry-tensor", "registry_tensor", "tensor", "TensorBlock"),
    ("registry-block", "registry_block", "block", "BlockBlock"),
    ("Fancy.Conv-2", "fancy_conv_2", "fancy_conv_2", "FancyConv2"),
    ("registry-a.b__c--9", "registry_a_b_c_9", "a_b_c_9", "ABC9"),
])
def test_awkward_names_give_valid_python_names_that_shadow_nothing(name, package, block, cls):
    names = PluginNames.from_name(name)
    assert (names.package, names.block, names.cls) == (package, block, cls)
    module = render(names)[f"{package}/__init__.py"]
    compile(module, "module", "exec")
    assert f"class {cls}(Block):" in module and f'register("{block}", {cls})' in module


@pytest.mark.parametrize("name, reason", [
    ("registry-café", "ASCII only"),
    ("2fast", "would start with a digit"),
    ("lenet", "plugin name 'lenet' is taken by registry-lenet"),
])
def test_names_are_refused_with_the_reason(name, reason, tmp_path, capsys):
    assert main(["new-plugin", "--dir", str(tmp_path / "out"), "--", name]) == 2
    assert reason in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_a_block_name_another_plugin_registers_is_refused(tmp_path, capsys):
    if "bottleneck" not in default_host().registry.names("block"):
        pytest.skip("needs registry-resnet, whose block is bottleneck")
    assert main(["new-plugin", "registry-bottleneck", "--dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "block 'bottleneck' is already registered by registry-resnet" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["1block", "my block", "bad-", "-bad", "a/b", "registry-core", "Registry_Core", "class", "torch", "json",
                                  "registry-café"])
def test_unusable_names_are_refused_in_one_line(name, tmp_path, capsys):
    assert main(["new-plugin", "--dir", str(tmp_path / "out"), "--", name]) == 2
    err = capsys.readouterr().err
    assert err.startswith("registry-core: error:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    with pytest.raises(ScaffoldError):
        PluginNames.from_name(name)


def test_an_occupied_folder_is_never_overwritten(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["new-plugin", NAME, "--dir", str(tmp_path)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert main(["new-plugin", NAME, "--dir", str(tmp_path / "notes.txt")]) == 2
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_an_empty_folder_or_the_default_folder_is_filled(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    assert main(["new-plugin", NAME, "--dir", str(tmp_path / "empty")]) == 0
    monkeypatch.chdir(tmp_path)
    assert main(["new-plugin", NAME]) == 0
    expected = set(render(PluginNames.from_name(NAME)))
    for root in (tmp_path / "empty", tmp_path / NAME):
        assert {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} == expected


def test_the_block_module_is_as_small_as_the_style_guide_promises():
    names = PluginNames.from_name(NAME)
    assert len(render(names)[f"{names.package}/__init__.py"].splitlines()) <= 40


def test_installed_skeleton_is_listed_as_a_plugin(skeleton):
    done = run_python("-m", "registry_core", "plugins", "--json", site=skeleton[1])
    assert done.returncode == 0, done.stderr
    record = next(r for r in json.loads(done.stdout) if r["distribution"] == NAME)
    assert (record["status"], record["version"], record["provided"]) == ("ok", "0.1.0", {"block": ["tiny_gate"]})


def test_installed_skeletons_pass_their_own_tests(skeleton, tmp_path):
    folders, site = skeleton
    tests = [str(folder / "tests") for folder in folders.values()]
    done = run_python("-m", "pytest", "-q", "-p", "no:cacheprovider", *tests, site=site, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-4000:]
    assert f"{TESTS_EACH * len(folders)} passed" in done.stdout, done.stdout[-4000:]


def test_the_readme_says_how_to_run_the_tests():
    readme = render(PluginNames.from_name(NAME))["README.md"]
    assert "pip install -e '.[test]'" in readme and "pytest tests" in readme and "never" in readme


def _outcomes(done: subprocess.CompletedProcess) -> str:
    return done.stdout.strip().splitlines()[-1]


def test_generated_tests_fail_rather_than_skip_when_the_plugin_is_disabled(skeleton, tmp_path):
    folders, site = skeleton
    keep = "registry-resnet" if "resnet18" in list_models() else "registry-core"  # only the plugin under test is left out
    done = run_python("-m", "pytest", "-q", "-p", "no:cacheprovider", str(folders[NAME] / "tests"), site=site, cwd=tmp_path,
                      REGISTRY_CORE_PLUGINS=keep)
    assert done.returncode == 1, done.stdout[-4000:]
    assert f"{TESTS_EACH} failed" in _outcomes(done) and "skipped" not in _outcomes(done), done.stdout[-4000:]
    assert "registry-tiny-gate is disabled" in done.stdout


def test_generated_tests_fail_rather_than_skip_when_the_plugin_is_broken(skeleton, tmp_path):
    folders, site = skeleton
    shadow = tmp_path / "shadow" / "registry_tiny_gate"  # found before the installed package
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('broken on purpose')\n")
    done = run_python("-m", "pytest", "-q", "-p", "no:cacheprovider", str(folders[NAME] / "tests"), cwd=tmp_path,
                      PYTHONPATH=f"{shadow.parent}:{site}")
    assert done.returncode == 1, done.stdout[-4000:]
    assert f"{TESTS_EACH} failed" in _outcomes(done) and "skipped" not in _outcomes(done), done.stdout[-4000:]
    assert "broken on purpose" in done.stdout
