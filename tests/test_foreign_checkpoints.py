"""Checkpoints as users have them: fine-tuned heads and other input channels, inside
training containers (timm's train.py, torchvision's reference scripts, Lightning) and
behind wrapper prefixes (DDP, torch.compile), converted with no --model and no
--num-classes and loaded directly; how stored files were verified; the pretrained
fallback to another tag at hand; and the factory modules importing one way."""

from __future__ import annotations

import argparse
import ast
import copy
import warnings
from pathlib import Path

import pytest
import torch
from components import register_hash
from safetensors.torch import save_file
from torch import nn

from registry_core import WeightsError, create, load, pretrained_info, read_metadata, save
from registry_core.cli import main
from registry_core.factory.conversion import convert_from
from registry_core.factory.store import store_path
from registry_core.testing import perturb_batchnorm
from registry_core.weights.checkpoints import sha256

SIZE = 64  # the comparison's input side: ResNet-18's outputs at 64x64 take milliseconds
TOLERANCE = 1e-5
timm = pytest.importorskip("timm")
torchvision = pytest.importorskip("torchvision")


pytestmark = pytest.mark.usefixtures("one_thread")  # small forward passes: faster on one thread


def _random(model: nn.Module) -> nn.Module:
    return perturb_batchnorm(model).eval()


@pytest.fixture(scope="module")
def sources() -> dict[str, nn.Module]:
    """Models of both libraries with random weights and heads (and inputs) other than ImageNet's."""
    torch.manual_seed(0)
    grey = torchvision.models.resnet18(num_classes=5)
    grey.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)  # a torchvision ResNet trained on 1-channel images
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "timm": _random(timm.create_model("resnet18", num_classes=7, in_chans=1)),
            "timm_ema": _random(timm.create_model("resnet18", num_classes=7, in_chans=1)),
            "torchvision": _random(torchvision.models.resnet18(num_classes=10)),
            "torchvision_ema": _random(torchvision.models.resnet18(num_classes=10)),
            "torchvision_grey": _random(grey),
        }


def _optimizer_state(model: nn.Module) -> dict:
    """An optimizer's state after one step, taken on a copy so that ``model`` keeps its weights."""
    model = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, next(model.parameters()).shape[1], 32, 32)).sum().backward()
    optimizer.step()
    optimizer.zero_grad()
    return optimizer.state_dict()


def timm_train_checkpoint(models):
    """What timm's train.py (CheckpointSaver) writes as checkpoint-N.pth.tar / model_best.pth.tar."""
    args = argparse.Namespace(model="resnet18", num_classes=7, in_chans=1, lr=0.05, mean=(0.5,), std=(0.5,),
                              device="cuda:0", model_ema=True, amp=True)
    return {"epoch": 11, "arch": "resnet18", "state_dict": models["timm"].state_dict(),
            "state_dict_ema": models["timm_ema"].state_dict(), "optimizer": _optimizer_state(models["timm"]),
            "version": 2, "args": args, "amp_scaler": {"scale": 65536.0, "growth_factor": 2.0, "_growth_tracker": 3},
            "metric": 71.25, "saver": {"checkpoint_files": [("./model_best.pth.tar", 71.25)], "best_epoch": 11}}


def torchvision_reference_checkpoint(models):
    """What torchvision's references/classification/train.py writes: its EMA is an AveragedModel."""
    model = models["torchvision"]
    ema = torch.optim.swa_utils.AveragedModel(models["torchvision_ema"])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
    args = argparse.Namespace(model="resnet18", epochs=600, lr=0.5, model_ema=True, weights=None, device="cuda")
    return {"model": model.state_dict(), "model_ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
            "lr_scheduler": scheduler.state_dict(), "epoch": 599, "args": args}


def ddp_state(models):
    """A state dict saved from the DDP/DataParallel wrapper: every key under ``module.``."""
    return nn.DataParallel(models["torchvision_grey"]).state_dict()


def compiled_state(models):
    """A state dict saved from ``torch.compile``'s wrapper: every key under ``_orig_mod.``."""
    return torch.compile(models["timm"]).state_dict()


class LitClassifier(nn.Module):
    """A LightningModule's shape: the network kept as ``self.model``."""

    def __init__(self, model):
        super().__init__()
        self.model = model


def lightning_checkpoint(models):
    """What Lightning's ModelCheckpoint writes (as of 2.x), plain data beside ``state_dict``."""
    return {"epoch": 2, "global_step": 120, "pytorch-lightning_version": "2.4.0",
            "state_dict": LitClassifier(models["timm"]).state_dict(),
            "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 3, "completed": 2}}}},
            "callbacks": {"ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}": {
                "best_model_score": torch.tensor(0.31), "best_model_path": "/runs/epoch=1.ckpt",
                "best_k_models": {"/runs/epoch=1.ckpt": torch.tensor(0.31)}, "dirpath": "/runs"}},
            "optimizer_states": [_optimizer_state(models["timm"])], "lr_schedulers": [{"last_epoch": 2, "_last_lr": [0.1]}],
            "hparams_name": "kwargs", "hyper_parameters": {"lr": 0.1, "num_classes": 7, "backbone": "resnet18"}}


# (case, file name, how to write it, library, source model it holds, --ema, what the output says was unwrapped)
CASES = [
    ("timm-train", "model_best.pth.tar", timm_train_checkpoint, "timm", "timm", False,
     "entry 'state_dict'"),
    ("timm-train-ema", "model_best.pth.tar", timm_train_checkpoint, "timm", "timm_ema", True, "entry 'state_dict_ema'"),
    ("torchvision-reference", "checkpoint.pth", torchvision_reference_checkpoint, "torchvision", "torchvision", False,
     "entry 'model'"),
    ("torchvision-reference-ema", "checkpoint.pth", torchvision_reference_checkpoint, "torchvision", "torchvision_ema",
     True, "entry 'model_ema'; dropped n_averaged (not weights); prefix 'module.' removed"),
    ("ddp", "ddp.pt", ddp_state, "torchvision", "torchvision_grey", False, "prefix 'module.' removed"),
    ("torch-compile", "compiled.bin", compiled_state, "timm", "timm", False, "prefix '_orig_mod.' removed"),
    ("lightning", "epoch=2-step=120.ckpt", lightning_checkpoint, "timm", "timm", False,
     "entry 'state_dict'; prefix 'model.' removed"),
    ("timm-hub-safetensors", "model.safetensors", lambda models: models["timm"].state_dict(), "timm", "timm", False, ""),
]


def _outputs(model: nn.Module, channels: int) -> torch.Tensor:
    x = torch.randn(2, channels, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model.eval()(x)


@pytest.mark.parametrize(("case", "name", "write", "library", "holds", "ema", "unwrapped"), CASES, ids=[c[0] for c in CASES])
def test_a_checkpoint_from_the_wild_converts_and_loads_with_the_source_models_outputs(
        sources, tmp_path, capsys, case, name, write, library, holds, ema, unwrapped):
    path = tmp_path / name
    content = write(sources)
    save_file(content, path) if path.suffix == ".safetensors" else torch.save(content, path)
    source = sources[holds]
    channels = next(source.parameters()).shape[1]
    expected = _outputs(source, channels)
    out = tmp_path / "ours.safetensors"
    argv = ["convert", "--from", library, "--checkpoint", str(path), "--out", str(out), "--verify-size", "32"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # timm's and torchvision's own notes on building their models
        assert main(argv + (["--ema"] if ema else [])) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert unwrapped in printed and "max |difference|" in printed
    header = read_metadata(out)
    classes = expected.shape[1]
    assert (header["model"], header["num_classes"], header["in_chans"]) == ("resnet18", str(classes), str(channels))
    assert float(header["max_abs_diff"]) <= TOLERANCE and header.get("source_unwrapped", "").startswith(unwrapped)
    converted = (_outputs(load(out), channels) - expected).abs().max().item()
    with pytest.warns(UserWarning, match="converted in memory; `registry-core convert --from"):
        direct = create("resnet18", weights=path, ema=ema)
    loaded = (_outputs(direct, channels) - expected).abs().max().item()
    print(f"{case}: converted {converted:.2e}, create(weights=) {loaded:.2e}")
    assert converted <= TOLERANCE and loaded <= TOLERANCE


def test_load_reads_a_foreign_file_by_its_layout_and_create_adapts_it(sources, tmp_path):
    path = tmp_path / "finetuned.pth"
    torch.save(sources["torchvision"].state_dict(), path)
    with pytest.warns(UserWarning, match="is a torchvision checkpoint of resnet18, converted in memory"):
        model = load(path)
    assert model.num_classes == 10 and (_outputs(model, 3) - _outputs(sources["torchvision"], 3)).abs().max() <= TOLERANCE
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grey = create("resnet18", weights=path, num_classes=3, in_chans=1)
    said = " ".join(str(w.message) for w in caught)
    assert "converted in memory" in said and "head reset for 3 classes" in said and "adapted from 3 to 1 input channels" in said
    assert grey.num_classes == 3 and grey.meta.input_size[0] == 1
    ours = tmp_path / "ours.safetensors"
    save(create("resnet18", num_classes=4), ours)
    with pytest.raises(WeightsError, match="registry-core weights file, which holds one set"):
        create("resnet18", weights=ours, ema=True)


def test_num_classes_comes_from_the_file_and_one_that_contradicts_it_is_refused(sources, tmp_path):
    path = tmp_path / "finetuned.pth"
    torch.save(sources["torchvision"].state_dict(), path)
    out = tmp_path / "ours.safetensors"
    assert convert_from("torchvision", "resnet18", path, out, verify=False)["num_classes"] == "10"
    assert convert_from("torchvision", "resnet18", path, out, verify=False, num_classes=10)["num_classes"] == "10"
    with pytest.raises(WeightsError, match=r"mis-shaped: head\.fc\.weight \(file \(10, 512\), model \(3, 512\)\)"):
        convert_from("torchvision", "resnet18", path, out, verify=False, num_classes=3)


def test_a_file_nothing_can_place_is_one_error_naming_identify(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(3, 3), "decoder.bias": torch.zeros(3)}, path)
    for reader in (lambda: load(path), lambda: create("resnet18", weights=path)):
        with pytest.raises(WeightsError, match=r"matches no registered layout.*`registry-core identify .*other.pth` shows more"):
            reader()
    torch.save({"state_dict": {"w": torch.zeros(1)}}, tmp_path / "no-ema.pth")
    with pytest.raises(WeightsError, match="holds no EMA weights"):
        load(tmp_path / "no-ema.pth", ema=True)


# ---- provenance in the store -----------------------------------------------------------------


@pytest.fixture
def torch_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    return folder


def _unverified_warnings(action) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        action()
    return [str(w.message) for w in caught if "is unverified" in str(w.message)]


def test_a_stand_in_is_listed_unverified_and_a_file_whose_hash_matches_verified(torch_cache, rediscover, capsys):
    stand_in = torch_cache / "resnet18-f37072fd.pth"  # torchvision's file name, random weights
    torch.save(torchvision.models.resnet18().state_dict(), stand_in)
    with pytest.warns(UserWarning, match="does not start with f37072fd"):
        create("resnet18", pretrained=True)
    info = pretrained_info("resnet18.tv_in1k")
    assert (info["status"], info["verified"], info["metrics"]) == ("store", False, {})
    assert info["published_metrics"]["top1"] == 69.758 and "differs from f37072fd" in info["verification"]
    assert main(["weights", "resnet18.tv_in1k"]) == 0
    out = capsys.readouterr().out
    assert "stored, unverified" in out and "69.76" not in out and "unverified: the sha256 of resnet18-f37072fd.pth" in out
    for _ in range(2):  # every time, not once
        assert len(_unverified_warnings(lambda: create("resnet18", pretrained=True))) == 1

    host = rediscover()
    register_hash(host, "resnet18.tv_in1k", "torchvision", sha256(stand_in))  # now its hash is the registered one
    store_path("resnet18.tv_in1k").unlink()
    create("resnet18", pretrained=True)
    info = pretrained_info("resnet18.tv_in1k")
    assert (info["verified"], info["metrics"]["top1"]) == (True, 69.758)
    assert "matches the hash registered for its tag (converted from torchvision's cache)" in info["verification"]
    assert main(["weights", "resnet18.tv_in1k"]) == 0
    out = capsys.readouterr().out
    assert "69.76" in out and "unverified" not in out and " stored" in out
    assert _unverified_warnings(lambda: create("resnet18", pretrained=True)) == []

    user_file = stand_in.rename(stand_in.with_name("mine.pth"))
    assert main(["convert", "--from", "torchvision", "--model", "resnet18", "--tag", "tv_in1k", "--checkpoint", str(user_file),
                 "--out", str(store_path("resnet18.tv_in1k")), "--no-verify"]) == 0
    assert "(converted from a user's file)" in pretrained_info("resnet18.tv_in1k")["verification"]


def test_an_absent_default_tag_names_the_other_tag_at_hand(torch_cache, tmp_path, capsys):
    (torch_cache / "resnet18_a1_0-d63eafa0.pth").write_bytes(b"timm's release file of resnet18.a1_in1k")
    with pytest.raises(WeightsError) as info:
        create("resnet18", pretrained=True)
    message = str(info.value)
    assert "no pretrained weights for resnet18.tv_in1k" in message
    assert "resnet18.a1_in1k is in timm's cache: create('resnet18.a1_in1k', pretrained=True)" in message
    out = tmp_path / "run"
    code = main(["train", "--model", "resnet18", "--dataset", "fake", "--data-opt", "train_size=4", "--data-opt",
                 "val_size=4", "--data-opt", "image_size=32", "--pretrained", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--model resnet18.a1_in1k --pretrained" in err


# ---- the factory's modules import one way ---------------------------------------------------------


WEIGHT_PATH = ("conversion", "identify", "layouts", "pretrained", "tag_catalog", "loading", "create")


def test_the_factory_modules_on_the_weights_path_import_one_way():
    """No chain of imports (inside functions too) leads from one of these modules back to itself."""
    import registry_core.factory as factory

    folder = Path(factory.__file__).parent
    modules = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    imports = {}
    for name in modules:
        tree = ast.parse((folder / f"{name}.py").read_text())
        imports[name] = {alias.name if node.module is None else node.module
                         for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1
                         for alias in node.names} & modules

    def reachable(start: str) -> set[str]:
        seen, todo = set(), list(imports[start])
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo += imports[name]
        return seen

    assert [name for name in WEIGHT_PATH if name in reachable(name)] == []
    assert "identify" in imports["conversion"] and "conversion" in imports["pretrained"]  # imports inside functions count
