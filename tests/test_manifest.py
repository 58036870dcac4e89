"""The manifest: listings answer without torch, and are never stale (installing,
editing and removing a plugin change the next answer); a damaged file is rebuilt."""

import functools
import json
import os
import time

import pytest
from installed_plugins import run_python, write_distribution

import registry_core
from registry_core.cli import main
from registry_core.factory import manifest
from registry_core.files import home

HEAVY = ("torch", "torchvision", "timm", "registry_resnet", "registry_lenet")

NO_TORCH = f"""
import json, sys
from registry_core.cli import main
import registry_core
answers = {{
    "models": registry_core.list_models("res*"),
    "small": registry_core.list_models(max_params=12e6, sort="params"),
    "info": registry_core.model_info("resnet50")["params"],
    "plugins": sorted(r.name for r in registry_core.list_plugins()),
    "blocks": registry_core.list_components("block"),
    "tags": registry_core.list_pretrained("resnet50"),
    "status": registry_core.pretrained_info("resnet50.tv2_in1k")["status"],
}}
codes = [main(argv) for argv in (["list"], ["info", "resnet50"], ["plugins"], ["list", "--family", "vgg", "--json"],
                                 ["weights", "resnet*"])]
print("ANSWER" + json.dumps({{**answers, "codes": codes, "heavy": [m for m in sys.modules if m.split(".")[0] in {HEAVY!r}]}}))
"""

EXTRA = """
    from registry_core import hookimpl, model_spec

    NAMES = ['extra_a']

    @hookimpl
    def register_models(register):
        for name in NAMES:
            register(name, lambda: model_spec("lenet5"))
"""


def answer_with(site=None, code=NO_TORCH, **env):
    """What ``code`` printed after ANSWER, run in a fresh process."""
    done = run_python("-c", code, site=site, **env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.rpartition("ANSWER")[2])


answer = answer_with


def test_listings_answer_from_the_manifest_without_importing_torch_or_any_plugin():
    first = answer()  # builds the manifest (this one imports torch)
    again = answer()
    assert again["heavy"] == [] and first["heavy"] != []
    assert {k: v for k, v in again.items() if k != "heavy"} == {k: v for k, v in first.items() if k != "heavy"}
    assert "resnet50" in again["models"] and again["info"] == 25_557_032 and again["codes"] == [0, 0, 0, 0, 0]
    assert "resnet50.tv2_in1k" in again["tags"] and again["status"] == "absent"
    assert again["small"][0] == "lenet5" and "resnet18" in again["small"] and "resnet50" not in again["small"]
    assert {"lenet", "resnet", "registry-core"} <= set(again["plugins"]) and "bottleneck" in again["blocks"]


LIST_EXTRA = "import json, registry_core; print('ANSWER' + json.dumps(registry_core.list_models('extra*')))"


def test_installing_editing_and_removing_a_plugin_change_the_next_answer(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    answer = functools.partial(answer_with, REGISTRY_CORE_PLUGINS="lenet,extra")  # a small manifest: quick rebuilds
    assert answer(site, LIST_EXTRA) == []
    write_distribution(site, "rc-test-extra", "rc_test_extra", EXTRA, "extra")
    assert answer(site, LIST_EXTRA) == ["extra_a"]
    module = site / "rc_test_extra.py"
    time.sleep(0.01)
    module.write_text(module.read_text().replace("['extra_a']", "['extra_a', 'extra_b']"))  # an editable install, edited
    assert answer(site, LIST_EXTRA) == ["extra_a", "extra_b"]
    for path in [module, *sorted((site / "rc_test_extra-1.2.3.dist-info").iterdir())]:
        path.unlink()
    (site / "rc_test_extra-1.2.3.dist-info").rmdir()
    assert answer(site, LIST_EXTRA) == []


@pytest.fixture
def no_live_host(monkeypatch):
    """This process forgets its loaded plugins, so listings go through the manifest."""
    from registry_core.plugins import host

    monkeypatch.setattr(host, "_default", None)
    monkeypatch.setattr(manifest, "live_host", lambda: None)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign"])
def test_a_damaged_or_foreign_manifest_is_ignored_and_rebuilt(no_live_host, damage, monkeypatch):
    monkeypatch.setenv("REGISTRY_CORE_PLUGINS", "lenet")  # a small manifest: quick rebuilds
    key = manifest.manifest_key()
    path = manifest.manifest_path(key)
    good = manifest.current()
    text = path.read_text()
    path.write_text({"garbage": "not json at all {", "truncated": text[: len(text) // 2],
                     "foreign": json.dumps({"key": {**key, "environment": "/elsewhere"}, "content": {"models": {}}})}[damage])
    assert manifest.current()["models"].keys() == good["models"].keys()
    assert json.loads(path.read_text())["key"] == key


def test_another_environment_or_setting_gets_another_manifest(monkeypatch):
    base = manifest.manifest_path(manifest.manifest_key())
    monkeypatch.setenv("REGISTRY_CORE_PLUGINS", "lenet")
    assert manifest.manifest_path(manifest.manifest_key()) != base
    monkeypatch.delenv("REGISTRY_CORE_PLUGINS")
    monkeypatch.setattr("sys.prefix", "/another/venv")
    assert manifest.manifest_path(manifest.manifest_key()) != base


@pytest.mark.parametrize("live", [True, False])
def test_filters_sorting_and_json(live, capsys, request):
    if not live:
        request.getfixturevalue("no_live_host")
    assert registry_core.list_models(family="vgg") == [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")]
    by_params = registry_core.list_models("resnet*", sort="params")
    params = [registry_core.model_info(n, flops=False)["params"] for n in by_params]
    assert params == sorted(params) and len(by_params) == 7
    assert "lenet5" in registry_core.list_models(max_gflops=1.0) and "resnet50" not in registry_core.list_models(max_gflops=1.0)
    assert all(registry_core.model_info(n)["gflops"] <= 5 for n in registry_core.list_models(max_gflops=5))
    assert registry_core.list_models(input_size=299) == ["inception_v3"]
    assert set(registry_core.list_models(plugin="registry-vgg")) == set(registry_core.list_models("vgg*"))
    assert "lenet5" not in registry_core.list_models(pretrained=True) and "resnet50" in registry_core.list_models(pretrained=True)
    assert main(["list", "--family", "resnet", "--max-params", "30M", "--sort", "params", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in listed] == [n for n in by_params if registry_core.model_info(n, flops=False)["params"] <= 30e6]
    assert all(m["family"] == "resnet" and m["params"] <= 30e6 for m in listed)
    with pytest.raises(SystemExit) as exited:
        main(["list", "--max-params", "lots"])
    assert exited.value.code == 2 and "30M" in capsys.readouterr().err


def test_the_manifest_is_written_atomically_into_the_home_folder(no_live_host):
    manifest.current()
    folder = manifest.manifest_path(manifest.manifest_key()).parent
    assert folder.parent == home() and str(folder).startswith(os.environ["REGISTRY_CORE_HOME"])
    assert [p.suffix for p in folder.iterdir()] == [".json"]  # no temporary file left behind


def _forge(path, edit, *, digest=True):
    """Rewrite the index at ``path`` with ``edit(content)`` applied, its digest recomputed
    (a careful forger) or left as it was (a hand edit)."""
    from registry_core.factory.index_schema import content_digest

    document = json.loads(path.read_text())
    edit(document["content"])
    if digest:
        document["digest"] = content_digest(document["content"])
    path.write_text(json.dumps(document))


FORGERIES = {
    "a model of a distribution that is not installed": lambda c: c["models"].update(
        fake={**c["models"]["lenet5"], "name": "fake", "distribution": "evil-dist"}) or c["components"]["model"].append("fake"),
    "params as text": lambda c: c["models"]["lenet5"].update(params="many"),
    "a negative count": lambda c: c["models"]["lenet5"].update(params=-1, params_inference=-1),
    "an unknown field": lambda c: c["models"]["lenet5"].update(advice="run this"),
    "std of zero": lambda c: c["models"]["lenet5"].update(std=[0.0]),
    "a section of the wrong type": lambda c: c.update(plugins={"a": 1}),
    "a model the registry does not list": lambda c: c["components"]["model"].remove("lenet5"),
    "a plugin record of the wrong shape": lambda c: c["plugins"].append({"name": 5}),
    "a name with an escape": lambda c: c["components"]["block"].append("evil\x1b[2J"),
    "a deeply nested value": lambda c: c["models"]["lenet5"].update(description=json.loads("[" * 50 + "]" * 50)),
}


@pytest.mark.parametrize("forgery", FORGERIES, ids=list(FORGERIES))
def test_a_forged_or_mistyped_index_is_never_shown_and_is_rebuilt(no_live_host, forgery, monkeypatch, capsys):
    monkeypatch.setenv("REGISTRY_CORE_PLUGINS", "lenet")
    path = manifest.manifest_path(manifest.manifest_key())
    good = manifest.current()
    _forge(path, FORGERIES[forgery])
    assert manifest.current() == good
    assert registry_core.model_info("lenet5")["params"] == 61_706 and main(["list"]) == 0
    assert "fake" not in capsys.readouterr().out


def test_tag_files_that_point_outside_their_folder_and_hand_edits_are_rejected(no_live_host, monkeypatch):
    path = manifest.manifest_path(manifest.manifest_key())
    good = manifest.current()
    tag = next(name for name, entry in good["weights"].items() if entry["sources"] and entry["sources"][0]["file"])

    def escape_the_folder(content):
        content["weights"][tag]["sources"][0]["file"] = "../../etc/passwd"

    def impossible_metric(content):
        content["weights"][tag]["metrics"]["top1"] = 140.0

    for edit in (escape_the_folder, impossible_metric):
        _forge(path, edit)
        assert json.dumps(manifest.current()["weights"][tag]) == json.dumps(good["weights"][tag])
    _forge(path, lambda content: content["models"]["resnet50"].update(params=1), digest=False)  # a careless hand edit
    assert registry_core.model_info("resnet50", flops=False)["params"] == 25_557_032


def test_flops_are_counted_on_first_request_and_kept_in_the_index(no_live_host, monkeypatch):
    monkeypatch.setenv("REGISTRY_CORE_PLUGINS", "lenet")
    key = manifest.manifest_key()
    assert "gflops" not in manifest.current()["models"]["lenet5"]  # building the index counted none
    gflops = registry_core.model_info("lenet5")["gflops"]
    assert gflops > 0 and json.loads(manifest.manifest_path(key).read_text())["content"]["models"]["lenet5"]["gflops"] == gflops


def test_a_rebuild_reuses_the_counts_of_models_whose_sources_did_not_change(no_live_host, monkeypatch):
    from registry_core.factory import catalog

    monkeypatch.setenv("REGISTRY_CORE_PLUGINS", "lenet,resnet")
    first = manifest.current()
    builds = []
    real = catalog._meta_model.__wrapped__
    monkeypatch.setattr(catalog, "_meta_model", lambda host, name: builds.append(name) or real(host, name))
    monkeypatch.setenv("REGISTRY_CORE_PREFER", "resnet50=registry-resnet")  # another key: a rebuild
    second = manifest.current()
    assert builds == [] and second["models"]["resnet50"]["params"] == first["models"]["resnet50"]["params"]
    second["models"]["resnet18"]["depends"]["registry-resnet"] = "edited"
    manifest._write(manifest.manifest_path(manifest.manifest_key()), manifest.manifest_key(), second)
    monkeypatch.setenv("REGISTRY_CORE_PREFER", "resnet50=registry-resnet,lenet5=registry-lenet")
    manifest.current()
    assert builds == ["resnet18"]  # only the model whose sources changed is built again


def test_flops_counted_once_are_not_counted_again_and_are_written_in_one_go(no_live_host, monkeypatch):
    from registry_core.factory import catalog

    monkeypatch.setenv("REGISTRY_CORE_PLUGINS", "lenet,vgg")
    manifest.current()
    writes = []
    real_write = manifest._write
    monkeypatch.setattr(manifest, "_write", lambda *args: writes.append(args) or real_write(*args))
    ranked = registry_core.list_models(sort="gflops")
    assert len(ranked) == 9 and len(writes) == 1  # every model's count, kept in one write

    def no_counting(host, name):
        raise AssertionError(f"{name}'s FLOPs were counted again")

    monkeypatch.setattr(catalog, "_gflops", no_counting)
    assert registry_core.list_models(sort="gflops") == ranked and len(writes) == 1
    assert registry_core.model_info("vgg11")["gflops"] > 0
