"""``transforms(model)``: the eval pipeline equals torchvision's ``weights.transforms()``
and timm's ``create_transform`` image for image, on real photographs and generated
images of odd sizes, as PIL images, ``uint8`` and float tensors; any image is given the
model's channel count; a weights file's header is enough; ``train=True`` is exactly
what the trainer feeds the model.

``assert_matches(data, anchor)`` is the comparison: parametrize it over weight tags to
check each tag's data config against its library's own transform."""

import dataclasses
import functools

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_sample_images

import registry_core
from registry_core import DataError, TrainConfig, Trainer
from registry_core.inference.transforms import transforms
from registry_core.model.data_config import DataConfig

# (height, width): landscape and portrait extremes, odd and prime sides, upsampling, already the crop size
ODD_SIZES = [(233, 231), (301, 1000), (1000, 301), (57, 80), (224, 224), (256, 256), (299, 300), (353, 517)]
KINDS = ("pil", "uint8", "float")


@functools.cache
def sample_images() -> tuple[Image.Image, ...]:
    """scikit-learn's two photographs (427 x 640 JPEGs), a crop of one at an odd size,
    and seeded noise (the hardest case for rounding) at each of ``ODD_SIZES``."""
    photos = [Image.fromarray(a) for a in load_sample_images().images]
    rng = np.random.default_rng(0)
    noise = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in ODD_SIZES]
    return (*photos, photos[0].crop((13, 7, 13 + 517, 7 + 353)), *noise)


def as_kind(image: Image.Image, kind: str):
    """The same RGB image as a PIL image, a ``uint8`` C x H x W tensor, or floats in [0, 1]."""
    if kind == "pil":
        return image
    pixels = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).contiguous()
    return pixels if kind == "uint8" else pixels.float() / 255


def assert_matches(data: DataConfig, anchor, *, kinds=KINDS, atol: float = 0.0) -> float:
    """Our transform for ``data`` gives ``anchor``'s tensors on every sample image in
    every input kind: exactly by default (``atol`` for an anchor that computes in
    another order). Returns the largest difference seen."""
    ours, largest = transforms(data), 0.0
    for number, image in enumerate(sample_images()):
        for kind in kinds:
            got, want = ours(as_kind(image, kind)), anchor(as_kind(image, kind))
            where = f"image {number} ({image.width}x{image.height}) as {kind}"
            assert type(got) is torch.Tensor and got.dtype == torch.float32, where
            assert got.shape == want.shape, f"{where}: shape {tuple(got.shape)} != {tuple(want.shape)}"
            difference = (got - want).abs().max().item()
            assert difference <= atol, f"{where}: differs by up to {difference}"
            largest = max(largest, difference)
    return largest


def timm_data_config(name: str) -> DataConfig:
    """Our DataConfig for a timm pretrained config (the fields map one to one)."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name).to_dict()
    return DataConfig(input_size=cfg["input_size"], test_input_size=cfg.get("test_input_size"),
                      crop_pct=cfg["crop_pct"], test_crop_pct=cfg.get("test_crop_pct"),
                      interpolation=cfg["interpolation"], mean=cfg["mean"], std=cfg["std"])


def timm_transform(name: str, use_test_size: bool = True):
    from timm.data import create_transform, resolve_data_config
    from timm.models import get_pretrained_cfg

    return create_transform(**resolve_data_config(pretrained_cfg=get_pretrained_cfg(name).to_dict(), use_test_size=use_test_size))


@pytest.mark.parametrize("weights, data", [
    ("ResNet50_Weights.IMAGENET1K_V1", DataConfig()),  # 256 = floor(224 / 0.875)
    ("ResNet50_Weights.IMAGENET1K_V2", DataConfig(resize_size=232)),
    ("Inception_V3_Weights.IMAGENET1K_V1", DataConfig(resize_size=342, input_size=(3, 299, 299))),
    ("EfficientNet_B0_Weights.IMAGENET1K_V1", DataConfig(interpolation="bicubic")),
])
def test_equals_torchvision_weights_transforms(weights, data):
    import torchvision.models

    enum, member = weights.split(".")
    assert_matches(data, getattr(getattr(torchvision.models, enum), member).transforms())


@pytest.mark.parametrize("name", ["resnet50.a1_in1k", "resnet50.tv_in1k", "inception_v3.tf_in1k", "vgg16.tv_in1k"])
def test_equals_timm_create_transform_at_the_test_size(name):
    # timm's MaybeToTensor passes tensors through unscaled, so its pipeline takes PIL images or floats
    assert_matches(timm_data_config(name), timm_transform(name), kinds=("pil", "float"))


def test_eval_uses_the_test_size_where_timm_needs_use_test_size():
    data = timm_data_config("resnet50.a1_in1k")  # trained at 224 (crop 0.95), evaluated at 288 (crop 1.0)
    image = sample_images()[0]
    assert transforms(data)(image).shape == (3, 288, 288)
    assert timm_transform("resnet50.a1_in1k", use_test_size=False)(image).shape == (3, 224, 224)
    train_size = dataclasses.replace(data, test_input_size=None, test_crop_pct=None)
    assert_matches(train_size, timm_transform("resnet50.a1_in1k", use_test_size=False), kinds=("pil",))


def test_a_different_config_is_caught():
    from torchvision.models import ResNet50_Weights

    with pytest.raises(AssertionError, match="differs by up to"):
        assert_matches(DataConfig(resize_size=240), ResNet50_Weights.IMAGENET1K_V2.transforms(), kinds=("pil",))
    with pytest.raises(AssertionError, match="shape"):
        assert_matches(DataConfig(resize_size=232, input_size=(3, 192, 192)), ResNet50_Weights.IMAGENET1K_V2.transforms())


def test_a_weights_file_is_read_from_its_header_without_building(tmp_path, monkeypatch):
    from registry_core.factory import build

    model = registry_core.create("resnet18", num_classes=3)
    model.data_config = DataConfig(resize_size=160, input_size=(3, 144, 144), interpolation="bicubic")
    path = registry_core.save(model, tmp_path / "r18.safetensors")
    monkeypatch.setattr(build, "build_model", lambda *a, **k: pytest.fail("transforms(file) built a model"))
    from_file, from_model = transforms(path), transforms(model)
    for image in sample_images()[:4]:
        assert torch.equal(from_file(image), from_model(image))
        assert from_file(image).shape == (3, 144, 144)
    with pytest.raises(registry_core.WeightsError, match="no such weights file"):
        transforms(tmp_path / "missing.safetensors")
    with pytest.raises(TypeError, match="a model, a weights file or a DataConfig"):
        transforms(42)


def _pil(mode: str, size=(61, 47)) -> Image.Image:
    rgb = Image.fromarray(np.random.default_rng(1).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    return rgb if mode == "RGB" else rgb.convert(mode)


@pytest.mark.parametrize("mode", ["L", "1", "RGBA", "LA", "P", "CMYK"])
def test_any_pil_mode_becomes_rgb_as_pil_converts_it(mode):
    image, ours = _pil(mode), transforms(DataConfig())
    assert torch.equal(ours(image), ours(image.convert("RGB")))


def test_palette_transparency_and_sixteen_bit_grey():
    ours = transforms(DataConfig())
    palette = _pil("P")
    palette.info["transparency"] = 0
    assert torch.equal(ours(palette), ours(palette.convert("RGBA").convert("RGB")))
    deep = np.random.default_rng(2).integers(0, 65536, (40, 50), dtype=np.uint16)
    top_bits = Image.fromarray((deep >> 8).astype(np.uint8)).convert("RGB")  # PIL alone would clip to 255
    assert torch.equal(ours(Image.fromarray(deep)), ours(top_bits))


def test_a_one_channel_model_gets_grey_from_anything():
    ours = transforms(registry_core.create("lenet5"))  # 1 x 32 x 32
    rgb = _pil("RGB")
    assert ours(rgb).shape == (1, 32, 32)
    assert torch.equal(ours(rgb), ours(rgb.convert("L")))
    assert torch.equal(ours(_pil("RGBA")), ours(_pil("RGBA").convert("L")))
    pixels = as_kind(rgb, "uint8")
    assert ours(pixels).shape == ours(pixels[:1]).shape == ours(pixels[0]).shape == (1, 32, 32)


def test_tensor_channels_alpha_and_bad_tensors():
    ours = transforms(DataConfig())
    pixels = as_kind(sample_images()[0], "uint8")
    assert torch.equal(ours(torch.cat([pixels, torch.full_like(pixels[:1], 7)])), ours(pixels))  # RGBA: alpha dropped
    grey = pixels[:1]
    assert torch.equal(ours(grey), ours(grey.expand(3, -1, -1)))
    assert torch.equal(ours(grey[0]), ours(grey))  # H x W is one grey channel
    with pytest.raises(DataError, match="uint8 .* or floating point"):
        ours(pixels.long())
    with pytest.raises(DataError, match="H x W x C array"):
        ours(pixels.permute(1, 2, 0))
    with pytest.raises(DataError, match="PIL image or a C x H x W tensor"):
        ours(np.asarray(sample_images()[0]))


@pytest.mark.parametrize("model, image_size", [("lenet5", None), ("resnet18", 96)])
def test_train_is_what_the_trainer_feeds_the_model(model, image_size):
    channels = 1 if model == "lenet5" else 3
    options = {"train_size": 4, "val_size": 2, "channels": channels, "image_size": 40, "num_classes": 3}
    trainer = Trainer(TrainConfig(model=model, dataset="fake", data_options=options, batch_size=2, image_size=image_size,
                                  device="cpu"))
    assert trainer.augment == ("crop-flip" if model == "lenet5" else "imagenet")  # the default policy by size
    ours = transforms(trainer.model, train=True)
    for index in range(4):
        image, _ = trainer.train_set.dataset[index]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(index)
            want = trainer._inputs(trainer.train_set.transform(image)[None])[0]
            torch.manual_seed(index)
            got = ours(image)
        assert torch.equal(got, want)
    pil = Image.fromarray(image.permute(1, 2, 0).squeeze(-1).numpy())
    torch.manual_seed(0)
    first = ours(pil)
    torch.manual_seed(0)
    assert torch.equal(first, ours(image)) and first.shape == (channels, *trainer.model.data_config.input_size[1:])


def _tag_sources(library: str):
    from registry_core.plugins.host import default_host

    registry = default_host().registry
    tags = [registry.get("weights", name).obj for name in registry.names("weights")]
    return [pytest.param(t, t.source(library), id=t.name) for t in tags if t.source(library) is not None]


@pytest.mark.parametrize("tag, source", _tag_sources("torchvision"))
def test_every_torchvision_tag_transforms_as_its_weights_enum_does(tag, source):
    import torchvision.models

    anchor = torchvision.models.get_model_weights(source.model)[source.member].transforms()
    assert_matches(tag.data_for(source), anchor, kinds=("pil",))


@pytest.mark.parametrize("tag, source", _tag_sources("timm"))
def test_every_timm_tag_transforms_as_timm_evaluates_it(tag, source):
    if tag.name == "resnext101_64x4d.tv_in1k":
        pytest.skip("timm lists torchvision's file at its default crop 0.875; the tag keeps torchvision's resize 232 "
                    "(see KNOWN_DIFFERENCES in tests/test_weight_tags.py)")
    assert_matches(tag.data_for(source), timm_transform(f"{source.model}.{source.member}"), kinds=("pil",))
