"""``identify_checkpoint`` and ``registry-core identify``: a checkpoint's model and source
from its keys and shapes, its tag from its hash, and a clean refusal of hostile files."""

import json
import os
import pickle
import shlex
import warnings
from pathlib import Path

import pytest
import torch
from components import register_hash
from safetensors.torch import save_file

from registry_core import create, load, read_metadata, save
from registry_core.cli import main
from registry_core.errors import WeightsError
from registry_core.factory.identify import identify_checkpoint
from registry_core.weights.checkpoints import sha256


class CreatesAFile:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def torchvision_checkpoint(folder: Path, model: str, member: str) -> Path:
    torchvision = pytest.importorskip("torchvision")
    weights = torchvision.models.get_model_weights(model)[member]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = torchvision.models.get_model(model, weights=None)
    path = folder / Path(weights.url).name  # the upstream file name
    torch.save(source.state_dict(), path)
    return path


def test_a_torchvision_checkpoint_is_named_with_its_tag_by_hash(tmp_path, rediscover, capsys):
    host = rediscover()
    path = torchvision_checkpoint(tmp_path, "resnet50", "IMAGENET1K_V2")
    before = identify_checkpoint(path)
    assert (before.model, before.source, before.tag) == ("resnet50", "torchvision", None)
    assert any("named like torchvision's file of resnet50.tv2_in1k" in n for n in before.notes)
    register_hash(host, "resnet50.tv2_in1k", "torchvision", sha256(path))
    found = identify_checkpoint(path)
    assert (found.model, found.source, found.tag) == ("resnet50", "torchvision", "resnet50.tv2_in1k")
    assert any("timm/resnet50" in n for n in found.notes)  # the same layout: timm's ResNet keys are torchvision's
    assert main(["identify", str(path)]) == 0
    out = capsys.readouterr().out
    assert "model     resnet50" in out and "tag       resnet50.tv2_in1k" in out
    assert f"registry-core convert --from torchvision --model resnet50 --tag tv2_in1k --checkpoint {path}" in out


def test_a_timm_checkpoint_is_named_with_its_tag_by_hash(tmp_path, rediscover):
    timm = pytest.importorskip("timm")
    host = rediscover()
    torch.manual_seed(0)
    path = tmp_path / "model.safetensors"  # what timm's hub copy is called
    save_file(timm.create_model("inception_v3", pretrained=False).state_dict(), path)
    found = identify_checkpoint(path)
    assert (found.model, found.source, found.tag) == ("inception_v3", "timm", None)
    register_hash(host, "inception_v3.tf_in1k", "timm", sha256(path))
    assert identify_checkpoint(path).tag == "inception_v3.tf_in1k"
    assert identify_checkpoint(path, source="torchvision").model is None  # torchvision's Inception keys differ


def test_a_resnet_tag_from_timm_prefers_timms_layout_when_the_hash_says_so(tmp_path, rediscover):
    timm = pytest.importorskip("timm")
    host = rediscover()
    torch.manual_seed(0)
    path = tmp_path / "resnet50_a1_0-14fe96d1.pth"
    torch.save(timm.create_model("resnet50", pretrained=False).state_dict(), path)
    register_hash(host, "resnet50.a1_in1k", "timm", sha256(path))
    found = identify_checkpoint(path)
    assert (found.model, found.source, found.tag) == ("resnet50", "timm", "resnet50.a1_in1k")


def test_convert_without_model_identifies_the_checkpoint_and_records_the_tag(tmp_path, rediscover, capsys):
    host = rediscover()
    path = torchvision_checkpoint(tmp_path, "resnet18", "IMAGENET1K_V1")
    register_hash(host, "resnet18.tv_in1k", "torchvision", sha256(path))
    out = tmp_path / "ours.safetensors"
    assert main(["convert", "--from", "torchvision", "--checkpoint", str(path), "--out", str(out)]) == 0
    assert "torchvision resnet18.tv_in1k ->" in capsys.readouterr().out
    header = read_metadata(out)
    assert (header["model"], header["tag"], header["source_hash_check"]) == ("resnet18", "tv_in1k", "matches")
    model = load(out)
    assert model.pretrained_tag == "tv_in1k" and len(model.class_names) == 1000 and model.data_config.eval_resize == 256
    assert identify_checkpoint(out).source == "registry-core" and identify_checkpoint(out).tag == "resnet18.tv_in1k"


def test_a_fine_tuned_file_is_identified_with_its_sizes_and_the_command_that_converts_it(tmp_path, capsys):
    torchvision = pytest.importorskip("torchvision")
    path = tmp_path / "finetuned.pth"
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), path)
    found = identify_checkpoint(path)
    assert (found.model, found.source, found.num_classes, found.in_chans) == ("resnet18", "torchvision", 10, 3)
    assert found.options == {"num_classes": 10} and any("10-class classifier" in n for n in found.notes)
    assert main(["identify", str(path)]) == 0
    out = capsys.readouterr().out
    assert "sizes     10 classes, 3 input channels" in out
    command = next(line for line in out.splitlines() if line.startswith("convert "))[len("convert "):].strip()
    assert command == found.convert_command() and "--num-classes" not in command
    argv = shlex.split(command)
    assert argv[0] == "registry-core" and main(argv[1:] + ["--verify-size", "32"]) == 0
    assert read_metadata(tmp_path / "finetuned.safetensors")["num_classes"] == "10"


def test_a_file_it_cannot_place_gets_the_closest_layouts_and_what_differs(tmp_path, capsys):
    torchvision = pytest.importorskip("torchvision")
    path = tmp_path / "edited.pth"
    state = torchvision.models.resnet18().state_dict()
    del state["fc.bias"]
    state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    torch.save(state, path)
    found = identify_checkpoint(path)
    assert found.model is None and found.closest[0].model == "resnet18"
    differences = "; ".join(found.closest[0].differences)
    assert "1 key(s) missing, e.g. fc.bias" in differences
    assert "layer1.0.conv1.weight (64, 64, 1, 1) instead of (64, 64, 3, 3)" in differences
    with pytest.raises(WeightsError, match="matches no registered layout"):
        found.require()
    assert main(["identify", str(path)]) == 1
    assert "closest: torchvision/resnet18" in capsys.readouterr().out
    assert main(["identify", str(path), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["closest"][0]["model"] == "resnet18"
    assert main(["convert", "--from", "torchvision", "--checkpoint", str(path), "--out", str(tmp_path / "o.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"`registry-core identify {path}` shows more" in err
    with pytest.raises(WeightsError, match="registry-core identify"):
        create("resnet18", weights=path)


def test_hostile_files_are_refused_cleanly_and_nothing_runs(tmp_path, capsys):
    victim = tmp_path / "pwned"
    with open(tmp_path / "evil.pth", "wb") as handle:
        pickle.dump({"w": CreatesAFile(victim)}, handle)
    (tmp_path / "truncated.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":")
    (tmp_path / "empty.pth").write_bytes(b"")
    for name in ("evil.pth", "truncated.safetensors", "empty.pth"):
        with pytest.raises(WeightsError):
            identify_checkpoint(tmp_path / name)
        assert main(["identify", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("registry-core: error:") and err.count("\n") == 1
    assert main(["identify", str(tmp_path / "missing.pth")]) == 2
    assert not victim.exists()


def test_our_own_files_are_named_by_their_header(tmp_path):
    model = create("lenet5")
    save(model, tmp_path / "lenet.safetensors")
    found = identify_checkpoint(tmp_path / "lenet.safetensors")
    assert (found.model, found.source, found.tag) == ("lenet5", "registry-core", None)
    save_file(model.state_dict(), tmp_path / "bare.safetensors")  # our layout, no header
    bare = identify_checkpoint(tmp_path / "bare.safetensors")
    assert (bare.model, bare.source) == ("lenet5", "registry-core")
