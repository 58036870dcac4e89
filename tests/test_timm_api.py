"""timm's and torchvision's names as their users type them: ``pretrained_cfg_overlay``,
``resolve_data_config``, ``pretrained_cfg``'s license, hub id and URL, a tag's own head
(``resnet50.bamboo``), ``transforms`` of a name, and ``gmacs``. Checked against timm's
own answers where timm is installed; no model is built with weights."""

import pytest
from PIL import Image

import registry_core
from registry_core import InvalidOverrideError, SpecError, WeightsError
from registry_core.model.compose import meta_device

TAGS = ("resnet50.a1_in1k", "resnet50.tv2_in1k", "resnet50.tv_in1k", "vgg16.tv_in1k", "resnet50.bamboo")


def timm_cfg(name: str) -> dict:
    from timm.models import get_pretrained_cfg

    return get_pretrained_cfg(name).to_dict()


@pytest.mark.parametrize("use_test_size", [False, True])
@pytest.mark.parametrize("name", TAGS)
def test_resolve_data_config_equals_timms(name, use_test_size):
    from timm.data import resolve_data_config

    theirs = resolve_data_config(pretrained_cfg=timm_cfg(name), use_test_size=use_test_size)
    ours = registry_core.resolve_data_config(model=name, use_test_size=use_test_size)
    assert ours == {k: theirs[k] for k in ours}, name
    with meta_device():
        model = registry_core.create(name)
    assert registry_core.resolve_data_config(pretrained_cfg=model.pretrained_cfg, use_test_size=use_test_size) == ours


def test_resolve_data_config_takes_timms_argument_names():
    args = {"img_size": 160, "in_chans": 1, "interpolation": "bilinear", "crop_pct": 1.0, "mean": None}
    config = registry_core.resolve_data_config(args, model="resnet50.a1_in1k")
    assert config["input_size"] == (1, 160, 160)
    assert (config["interpolation"], config["crop_pct"]) == ("bilinear", 1.0)
    assert config["mean"] == (0.485, 0.456, 0.406)  # None leaves the model's value


@pytest.mark.parametrize("name", ["resnet50.tv_in1k", "resnet50.a1_in1k", "vgg16.tv_in1k"])
def test_pretrained_cfg_has_license_hub_id_and_url_as_timm(name):
    with meta_device():
        cfg, bare = registry_core.create(name).pretrained_cfg, registry_core.create(name.split(".")[0]).pretrained_cfg
    theirs, info = timm_cfg(name), registry_core.pretrained_info(name)
    assert cfg["license"] == info["license"] == theirs["license"]
    assert cfg["hf_hub_id"] == theirs["hf_hub_id"]
    torchvision = [s["file"] for s in info["sources"] if s["library"] == "torchvision"]
    if torchvision:  # torchvision's download URL, which timm gives too where it names one
        assert cfg["url"] == f"https://download.pytorch.org/models/{torchvision[0]}"
        assert theirs["url"] in ("", cfg["url"])
    else:  # timm's release URL is not recorded: its hub id is
        assert cfg["url"] == ""
    assert bare["license"] == bare["url"] == ""  # no tag, nothing to show


def test_pretrained_cfg_overlay_changes_the_data_config_and_what_is_shown():
    overlay = {"input_size": (3, 160, 160), "crop_pct": 1.0, "interpolation": "bicubic", "license": "mine"}
    model = registry_core.create("resnet50.a3_in1k", pretrained_cfg_overlay={**overlay, "test_input_size": None})
    assert {k: model.pretrained_cfg[k] for k in overlay} == overlay
    assert registry_core.resolve_data_config(model=model)["input_size"] == (3, 160, 160)
    assert registry_core.transforms(model)(Image.new("RGB", (300, 200))).shape == (3, 160, 160)
    with pytest.raises(InvalidOverrideError, match="num_classes"):
        registry_core.create("resnet50", pretrained_cfg_overlay={"num_classes": 3})
    with pytest.raises(SpecError, match="crop_pct"):
        registry_core.create("resnet50", pretrained_cfg_overlay={"crop_pct": 3})


def test_a_tag_builds_the_head_it_names_unless_num_classes_is_given():
    assert registry_core.pretrained_info("resnet50.bamboo")["num_classes"] == timm_cfg("resnet50.bamboo")["num_classes"] == 0
    assert registry_core.create("resnet50.bamboo").num_classes == 0
    assert registry_core.create("resnet50.bamboo", num_classes=7).num_classes == 7
    assert registry_core.create("resnet50.a1_in1k").num_classes == 1000


def test_transforms_takes_a_model_or_tag_name_and_a_file_of_that_name_wins(tmp_path, monkeypatch):
    image = Image.new("RGB", (400, 300))
    assert registry_core.transforms("resnet50.a1_in1k")(image).shape == (3, 288, 288)  # the tag's test size
    assert registry_core.transforms("lenet5")(image).shape == registry_core.create("lenet5").meta.input_size
    with pytest.raises(WeightsError, match="neither a file nor a registered model"):
        registry_core.transforms("resnet5x.a1_in1k")
    monkeypatch.chdir(tmp_path)
    registry_core.save(registry_core.create("lenet5", in_chans=3), "resnet50.a1_in1k")
    assert registry_core.transforms("resnet50.a1_in1k")(image).shape[0] == 3
    assert registry_core.transforms("resnet50.a1_in1k")(image).shape[-1] == 32  # the file's lenet config


def test_gmacs_are_half_the_gflops_and_sort_the_listing():
    from torchvision.models import ResNet18_Weights

    info = registry_core.model_info("resnet18")
    assert info["gmacs"] == pytest.approx(info["gflops"] / 2)
    assert info["gmacs"] == pytest.approx(ResNet18_Weights.DEFAULT.meta["_ops"], abs=0.001)  # 1.814
    assert "gmacs" not in registry_core.model_info("resnet18", flops=False)
    names = registry_core.list_models("*18*", sort="gmacs")
    assert len(names) >= 2 and names == registry_core.list_models("*18*", sort="gflops")
    macs = [registry_core.model_info(n)["gmacs"] for n in names]
    assert macs == sorted(macs)


def test_list_sorted_by_gmacs_shows_both_counts(capsys):
    from registry_core.cli import main

    assert main(["list", "resnet18*", "--sort", "gmacs"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split()[:5] == ["name", "family", "params", "gmacs", "gflops"]
    gmacs = [float(row.split()[3]) for row in rows]
    assert len(rows) >= 2 and gmacs == sorted(gmacs)
    assert all(float(row.split()[4]) == pytest.approx(2 * float(row.split()[3]), abs=0.002) for row in rows)
