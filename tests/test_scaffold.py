"""``registry-core new-plugin``: names, refusals, and a skeleton that installs and passes
its own test as generated."""

import json

import pytest
from installed_plugins import install, run_python

from registry_core import list_models
from registry_core.cli import main
from registry_core.errors import ScaffoldError
from registry_core.scaffold import PluginNames, render

NAME = "registry-tiny-gate"


@pytest.fixture(scope="module")
def skeleton(tmp_path_factory):
    """(skeleton folder, site folder): the skeleton written by the command, then installed."""
    tmp = tmp_path_factory.mktemp("scaffold")
    assert main(["new-plugin", NAME, "--dir", str(tmp / "src")]) == 0
    return tmp / "src", install(tmp / "src", tmp / "site")


def test_names_derive_from_the_distribution_name():
    assert PluginNames.from_name("registry-cool-block") == PluginNames("registry-cool-block", "registry_cool_block", "cool_block", "CoolBlock")
    assert PluginNames.from_name("Fancy.Conv") == PluginNames("Fancy.Conv", "fancy_conv", "fancy_conv", "FancyConv")


@pytest.mark.parametrize("name", ["1block", "my block", "bad-", "-bad", "a/b", "registry-core", "Registry_Core", "class", "torch", "json"])
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


def test_installed_skeleton_passes_its_own_test(skeleton, tmp_path):
    src, site = skeleton
    done = run_python("-m", "pytest", "-q", "-p", "no:cacheprovider", str(src / "tests"), site=site, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-4000:]
    expected = 3 if "resnet18" in list_models() else 2
    assert f"{expected} passed" in done.stdout, done.stdout[-4000:]
