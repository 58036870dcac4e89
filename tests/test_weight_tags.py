"""Weight tags: every bundled tag's facts equal its source library's own metadata, tags
load with their preprocessing and labels, and the catalogue says where weights are.

The comparisons run over the registered tags, so a third party's torchvision- or
timm-sourced tags are held to the same standard."""

import json
import os
import warnings
from pathlib import Path

import pytest
import torch

import registry_core
from registry_core import DataConfig, WeightSource, WeightTag, create, hookimpl, load, read_metadata, save
from registry_core.cli import main
from registry_core.errors import SpecError, UnknownComponentError, WeightsError
from registry_core.factory.pretrained import list_pretrained, pretrained_info
from registry_core.plugins import host as plugins

# Where a tag's facts may differ from its source library's, field by field, and why.
KNOWN_DIFFERENCES = {
    ("resnext101_64x4d.tv_in1k", "timm"): {
        "crop_pct": "timm republishes torchvision's file with its default crop_pct 0.875; torchvision evaluates "
                    "these weights at resize 232, crop 224, which the tag follows"},
    ("inception_v3.tv_in1k", "timm"): {
        "license": "timm's copy (an older torchvision file) is listed under timm's apache-2.0; the tag keeps "
                   "torchvision's bsd-3-clause, whose file it converts first"},
}


def registered_tags() -> list[WeightTag]:
    registry = plugins.default_host().registry
    return [registry.get("weights", name).obj for name in registry.names("weights")]


def tags_from(library: str) -> list[tuple[WeightTag, WeightSource]]:
    return [(t, t.source(library)) for t in registered_tags() if t.source(library) is not None]


@pytest.fixture
def library_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return tmp_path / "torch" / "hub" / "checkpoints", tmp_path / "hf" / "hub"


# ---- every field against the source libraries -------------------------------------------------------


@pytest.mark.parametrize("tag, source", tags_from("torchvision"), ids=lambda v: getattr(v, "name", ""))
def test_torchvision_sourced_tags_equal_torchvisions_metadata(tag, source):
    torchvision = pytest.importorskip("torchvision")
    weights = torchvision.models.get_model_weights(source.model)[source.member]
    transform = weights.transforms()
    data = tag.data_for(source)
    assert (data.eval_resize, data.eval_size) == (transform.resize_size[0], transform.crop_size[0])
    assert (data.interpolation, data.mean, data.std) == (transform.interpolation.value, tuple(transform.mean),
                                                          tuple(transform.std))
    assert source.file == Path(weights.url).name and weights.url.endswith(source.file)
    assert weights.url.rsplit("-", 1)[1].startswith(source.hash_prefix) and len(source.hash_prefix) >= 8
    metrics = weights.meta["_metrics"]["ImageNet-1K"]
    reported = {"top1": metrics["acc@1"], "top5": metrics["acc@5"]}
    assert dict(tag.metrics) == {k: v for k, v in reported.items() if v == v}  # NaN: torchvision reports none
    categories = weights.meta["categories"]
    assert (tag.labels == "imagenet-1k") == (categories is not None and len(categories) == 1000)
    assert tag.default == (weights == torchvision.models.get_model_weights(source.model).DEFAULT)


@pytest.mark.parametrize("tag, source", tags_from("timm"), ids=lambda v: getattr(v, "name", ""))
def test_timm_sourced_tags_equal_timms_pretrained_cfg(tag, source):
    pytest.importorskip("timm")
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(f"{source.model}.{source.member}")
    assert cfg is not None, f"timm has no {source.model}.{source.member}"
    assert source.hub_id == cfg.hf_hub_id
    assert source.file == (Path(cfg.url).name if isinstance(cfg.url, str) and cfg.url else "")
    data = tag.data_for(source)
    ours = {"input_size": data.input_size, "test_input_size": data.test_input_size, "crop_pct": data.crop_pct,
            "test_crop_pct": data.test_crop_pct, "interpolation": data.interpolation, "mean": data.mean,
            "std": data.std, "crop_mode": data.crop_mode, "license": tag.license or None, "num_classes": tag.num_classes}
    theirs = {k: getattr(cfg, k) for k in ours}
    theirs["mean"], theirs["std"] = tuple(theirs["mean"]), tuple(theirs["std"])
    for field in KNOWN_DIFFERENCES.get((tag.name, "timm"), {}):
        assert ours.pop(field) != theirs.pop(field), f"{tag.name} now agrees with timm on {field}: drop the exception"
    assert ours == theirs


def test_every_torchvision_weights_member_and_timm_tag_of_a_bundled_architecture_is_registered():
    torchvision = pytest.importorskip("torchvision")
    timm = pytest.importorskip("timm")
    covered = {(s.library, s.model, s.member) for t in registered_tags() for s in t.sources}
    converters = [registry_core.get_converter(*key.split("/")) for key in registry_core.list_converters()]
    expected = set()
    for c in converters:
        if c.source == "torchvision":
            expected |= {("torchvision", c.source_name, m.name) for m in torchvision.models.get_model_weights(c.source_name)}
        elif c.source == "timm":
            expected |= {("timm", c.source_name, n.split(".", 1)[1]) for n in timm.list_pretrained(f"{c.source_name}.*")}
    assert expected and expected <= covered, sorted(expected - covered)


def test_each_model_has_at_most_one_default_tag_and_every_tag_a_converter():
    defaults: dict[str, list[str]] = {}
    converters = set(registry_core.list_converters())
    for tag in registered_tags():
        if tag.default:
            defaults.setdefault(tag.model, []).append(tag.tag)
        assert tag.model in registry_core.list_models()
        assert any(f"{s.library}/{tag.model}" in converters for s in tag.sources), tag.name
    assert all(len(d) == 1 for d in defaults.values()), defaults


# ---- data configs -----------------------------------------------------------------------------------


def test_data_config_eval_sizes_and_validation():
    tv2 = DataConfig(input_size=(3, 176, 176), test_input_size=(3, 224, 224), test_crop_pct=0.965)
    assert (tv2.eval_size, tv2.eval_resize) == (224, 232)
    assert (DataConfig().eval_size, DataConfig().eval_resize) == (224, 256)
    assert DataConfig(input_size=(3, 299, 299), resize_size=342).eval_resize == 342
    assert DataConfig.from_json(tv2.to_json()) == tv2
    assert tv2.with_channels(1).mean == (pytest.approx(sum(tv2.mean) / 3),)
    for bad in ({"crop_pct": 1.5}, {"interpolation": "lanczos9"}, {"input_size": (3, 0, 224)}, {"mean": (0.5,)},
                {"std": (0.0, 1.0, 1.0)}, {"resize_size": -1}):
        with pytest.raises(SpecError):
            DataConfig(**bad)
    with pytest.raises(SpecError, match="unknown data config field"):
        DataConfig.from_dict({"input_sizes": [3, 2, 2]})


def test_tag_records_are_validated():
    with pytest.raises(SpecError, match="tag must be"):
        WeightTag("resnet50", "Bad-Tag", DataConfig(), ())
    with pytest.raises(SpecError, match="sha256"):
        WeightTag("resnet50", "x", DataConfig(), (WeightSource("torchvision", "resnet50", sha256="xyz"),))
    with pytest.raises(SpecError, match="2 class names for 3 classes"):
        WeightTag("m", "x", DataConfig(), (), labels=("a", "b"), num_classes=3)


def test_a_tag_name_gives_the_tags_preprocessing_without_weights():
    model = create("resnet50.tv2_in1k")
    assert model.pretrained_tag == "tv2_in1k" and model.data_config.eval_resize == 232
    assert model.pretrained_cfg["test_input_size"] == (3, 224, 224) and model.class_names is None
    assert create("resnet50").data_config.eval_resize == 256  # the architecture's defaults
    with pytest.raises(UnknownComponentError, match="did you mean .*'resnet50.tv2_in1k'"):
        create("resnet50.tv3_in1k")


def test_model_info_and_info_show_the_default_tags_data_config(capsys):
    info = registry_core.model_info("resnet50", flops=False)
    assert info["default_tag"] == "tv2_in1k" and "a1_in1k" in info["tags"]
    assert info["data_config"]["test_input_size"] == (3, 224, 224) and info["data_config"]["test_crop_pct"] == 0.965
    assert main(["info", "resnet50"]) == 0
    out = capsys.readouterr().out
    assert "default_tag       tv2_in1k" in out and "'test_crop_pct': 0.965" in out


# ---- loading tags from the library caches --------------------------------------------------------


def torchvision_file(folder: Path, model: str, member: str, seed: int = 0) -> tuple[Path, torch.nn.Module]:
    """torchvision's ``model`` with random weights, saved under the upstream file name of ``member``."""
    torchvision = pytest.importorskip("torchvision")
    weights = torchvision.models.get_model_weights(model)[member]
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = torchvision.models.get_model(model, weights=None).eval()
    path = folder / Path(weights.url).name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(source.state_dict(), path)
    return path, source


def test_pretrained_tag_converts_from_torchvisions_cache_with_its_preprocessing_and_labels(library_caches, tmp_path):
    torchvision = pytest.importorskip("torchvision")
    cached, source = torchvision_file(library_caches[0], "resnet18", "IMAGENET1K_V1")
    with pytest.warns(UserWarning, match="converting torchvision's cached"):
        model = create("resnet18", pretrained=True).eval()  # the default tag
    assert model.pretrained_tag == "tv_in1k" and model.data_config.eval_resize == 256
    assert model.class_names == torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), source(x))
    stored = Path(os.environ["REGISTRY_CORE_HOME"]) / "weights" / "resnet18.tv_in1k.safetensors"
    header = read_metadata(stored)
    assert header["tag"] == "tv_in1k" and json.loads(header["metrics"]) == {"top1": 69.758, "top5": 89.078}
    assert header["source_hash_check"].startswith("differs")  # random weights, not the upstream file
    again = load(stored)  # the file alone says how to preprocess and label
    assert (again.pretrained_tag, again.data_config, again.class_names) == ("tv_in1k", model.data_config, model.class_names)
    assert pretrained_info("resnet18.tv_in1k")["status"] == "store"


def test_a_tag_whose_source_wants_other_input_gets_that_sources_data_config(library_caches):
    """timm's Inception v3 has no transform_input: its copy of torchvision's weights takes inputs scaled to [-1, 1]."""
    tag = plugins.default_host().registry.get("weights", "inception_v3.tv_in1k").obj
    assert tag.data_for(tag.source("torchvision")).mean == (0.485, 0.456, 0.406)
    assert tag.data_for(tag.source("timm")).mean == (0.5, 0.5, 0.5)
    assert create("inception_v3.tv_in1k").stem.transform is not None  # torchvision's layout: transform_input on


def test_the_catalogue_says_where_each_tag_is(library_caches, capsys):
    assert "resnet50.tv2_in1k" in list_pretrained() and list_pretrained("resnet50") == list_pretrained("resnet50.*")
    absent = pretrained_info("resnet50.tv2_in1k")
    assert absent["status"] == "absent" and f"place resnet50-11ad3fa6.pth in {library_caches[0]}" in absent["advice"]
    torchvision_file(library_caches[0], "resnet50", "IMAGENET1K_V2")
    cached = pretrained_info("resnet50.tv2_in1k")
    assert (cached["status"], cached["library"]) == ("cache", "torchvision")
    assert main(["weights", "resnet50.tv*"]) == 0
    out = capsys.readouterr().out
    assert "resnet50.tv2_in1k (default)" in out and "80.86" in out and "in torchvision's cache" in out
    assert main(["weights", "resnet50.tv_in1k", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["name"] == "resnet50.tv_in1k" and listed[0]["status"] == "absent"
    assert main(["weights", "nothing*"]) == 0 and "no weight tag matches" in capsys.readouterr().out
    with pytest.raises(UnknownComponentError):
        pretrained_info("resnet50.nope")


# ---- third-party tags ------------------------------------------------------------------------------


def tiny_tag(**fields) -> WeightTag:
    return WeightTag("tiny", "lab_in4", DataConfig(input_size=(3, 32, 32), crop_pct=1.0), (WeightSource("lab", "tiny"),),
                     **{"labels": ("cat", "dog", "bird", "fish"), "num_classes": 4, "default": True, **fields})


def test_a_third_party_registers_tags_through_the_hook(fresh_host):
    from components import make_plugin

    class Lab:
        @hookimpl
        def register_weights(self, register):
            register(tiny_tag())

    fresh_host(make_plugin(), "tiny-plugin")
    record = fresh_host(Lab(), "lab")
    assert record.status == "ok" and record.provided["weights"] == ["tiny.lab_in4"]
    assert list_pretrained("tiny") == ["tiny.lab_in4"]
    assert create("tiny.lab_in4").data_config.crop_pct == 1.0
    assert pretrained_info("tiny.lab_in4")["labels"] == ["cat", "dog", "bird", "fish"]

    class Broken:
        @hookimpl
        def register_weights(self, register):
            register("tiny.x", object())

    broken = fresh_host(Broken(), "broken")
    assert broken.status == "broken" and "registry_core.WeightTag" in broken.error


def test_a_tags_own_class_names_reach_the_converted_file(fresh_host, tmp_path):
    from components import make_plugin

    from registry_core import Converter
    from registry_core.factory.conversion import convert_from
    from registry_core.weights.checkpoints import write_checkpoint

    class Lab:
        @hookimpl
        def register_converters(self, register):
            register(Converter("lab", "tiny", dict, dict))

        @hookimpl
        def register_weights(self, register):
            register(tiny_tag())

    fresh_host(make_plugin(), "tiny-plugin")
    fresh_host(Lab(), "lab")
    plain = tmp_path / "plain.safetensors"
    write_checkpoint(create("tiny").state_dict(), plain, {})
    convert_from("lab", "tiny", plain, tmp_path / "tagged.safetensors", tag="lab_in4", verify=False)
    model = load(tmp_path / "tagged.safetensors")
    assert model.class_names == ["cat", "dog", "bird", "fish"] and model.pretrained_tag == "lab_in4"
    assert model.data_config.crop_pct == 1.0
    with pytest.raises(UnknownComponentError):
        convert_from("lab", "tiny", plain, tmp_path / "x.safetensors", tag="nope", verify=False)


def test_old_untagged_store_file_still_serves_the_default_tag(tmp_path):
    stored = Path(os.environ["REGISTRY_CORE_HOME"]) / "weights" / "resnet18.safetensors"
    torch.manual_seed(0)
    save(create("resnet18"), stored)
    model = create("resnet18", pretrained=True)
    assert all(torch.equal(v, read) for v, read in zip(model.state_dict().values(), load(stored).state_dict().values()))
    with pytest.raises(WeightsError, match="no pretrained weights for resnet18.a1_in1k"):
        create("resnet18.a1_in1k", pretrained=True)  # not the default tag: the old file is not it


def test_fine_tuned_class_names_are_not_kept_for_a_new_head(tmp_path):
    model = create("lenet5")
    model.class_names = [str(i) for i in range(model.num_classes)]
    save(model, tmp_path / "named.safetensors")
    assert load(tmp_path / "named.safetensors").class_names == model.class_names
    with pytest.warns(UserWarning, match="head reset"):
        assert load(tmp_path / "named.safetensors", num_classes=3).class_names is None
    model.class_names = ["only", "two"]
    with pytest.raises(WeightsError, match="names 2 classes"):
        save(model, tmp_path / "wrong.safetensors")
