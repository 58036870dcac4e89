"""The third-party SE plugin in examples/, installed as a user installs it and found only
through its entry point; its own tests run against the installed copy."""

import json
from pathlib import Path

import pytest
import tomllib
from installed_plugins import copy_tree, install, run_python

from registry_core import UnknownComponentError, create, list_datasets, list_models, list_plugins

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "se-block-plugin"
DISTRIBUTION = "registry-se-block"

TRAIN_STEP = """
import torch
from torch.utils.data import default_collate
from registry_core import TrainConfig, Trainer

trainer = Trainer(TrainConfig(model="se_resnet50", dataset="digits", batch_size=4, image_size=32, max_steps=1))
se = {k: v.clone() for k, v in trainer.model.state_dict().items() if ".se." in k}
images, targets = default_collate([trainer.train_set[i] for i in range(4)])
loss, correct, seen = trainer.train_step([(images, targets)])
moved = [k for k, v in trainer.model.state_dict().items() if k in se and not torch.equal(v, se[k])]
print(seen, bool(torch.isfinite(loss)), len(moved), len(se))
"""


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """(source copy, site folder) of the example installed into a temporary site."""
    tmp = tmp_path_factory.mktemp("se_block")
    tree = copy_tree(EXAMPLE, tmp)
    return tree, install(tree, tmp / "site")


def plugins_json(site=None, **env) -> list[dict]:
    done = run_python("-m", "registry_core", "plugins", "--json", site=site, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def listings(example):
    """``registry-core plugins --json`` with the example installed, and without it."""
    return plugins_json(example[1]), plugins_json()


def test_plugins_lists_it_with_its_version(listings):
    version = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["version"]
    record = next(r for r in listings[0] if r["distribution"] == DISTRIBUTION)
    assert (record["name"], record["status"], record["version"]) == ("se_block", "ok", version)
    assert record["provided"] == {"block": ["se_bottleneck"], "model": ["se_resnet50"], "converter": ["timm/se_resnet50"]}


def test_installing_it_changes_no_other_plugin(listings):
    with_it, without_it = listings
    assert [r for r in with_it if r["distribution"] != DISTRIBUTION] == without_it


def test_without_it_its_names_are_unknown_and_the_rest_works():
    assert DISTRIBUTION not in {r.distribution for r in list_plugins()}
    assert "se_resnet50" not in list_models()
    with pytest.raises(UnknownComponentError, match="se_bottleneck"):
        create(list_models()[0], block="se_bottleneck")


def test_its_own_tests_pass_against_the_installed_copy(example, tmp_path):
    tree, site = example
    done = run_python("-m", "pytest", "-q", "-p", "no:cacheprovider", str(tree / "tests"), site=site, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-4000:]
    if {"resnet50", "resnext50_32x4d"} <= set(list_models()):
        assert "skipped" not in done.stdout, done.stdout[-4000:]


def test_without_resnet_se_resnet50_is_a_one_line_error_naming_registry_resnet(example):
    done = run_python("-m", "registry_core", "info", "se_resnet50", site=example[1], REGISTRY_CORE_PLUGINS="se_block")
    assert done.returncode == 2
    error = [line for line in done.stderr.splitlines() if not line.startswith("registry-core: indexed")]  # a slow index says so
    assert len(error) == 1 and "registry-resnet" in error[0]


@pytest.mark.skipif("digits" not in list_datasets(), reason="needs the registry-datasets plugin's digits")
@pytest.mark.skipif("resnet50" not in list_models(), reason="se_resnet50 needs registry-resnet")
def test_a_training_step_through_the_trainer_moves_the_se_weights(example):
    done = run_python("-c", TRAIN_STEP, site=example[1])
    assert done.returncode == 0, done.stderr[-4000:]
    seen, finite, moved, total = done.stdout.split()
    assert (seen, finite) == ("4", "True")
    assert int(total) > 0 and moved == total
