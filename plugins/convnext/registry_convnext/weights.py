"""The pretrained weights of ConvNeXt: torchvision's weights enum member of each
variant and every timm tag of these architectures, with their preprocessing, label
sets, metrics and files.

timm's tags include heads of other widths: ImageNet-22k (21,841 classes), ImageNet-12k
(11,821), CLIP image towers whose head projects to a 640-wide embedding, and DINOv3 and
EUPE backbones without a classifier; those carry no label set. The plugin's tests and
the core's weight-tag tests check every field against torchvision's and timm's own
metadata.
"""

from registry_core import DataConfig, timm_tag, torchvision_tag

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

FB = DataConfig(test_input_size=(3, 288, 288), test_crop_pct=1.0, interpolation="bicubic")  # trained at 224, evaluated at 288 uncropped
FB_22K = DataConfig(interpolation="bicubic")  # resize 256, crop 224
IN12K = DataConfig(crop_pct=0.95, interpolation="bicubic")
IN12K_FT = DataConfig(test_input_size=(3, 288, 288), crop_pct=0.95, test_crop_pct=1.0, interpolation="bicubic")
SQUASH_384 = DataConfig(input_size=(3, 384, 384), crop_pct=1.0, interpolation="bicubic", crop_mode="squash")  # resized to 384x384, aspect not kept
FULL = DataConfig(crop_pct=1.0, interpolation="bicubic")  # 224 uncropped
FULL_256 = DataConfig(input_size=(3, 256, 256), crop_pct=1.0, interpolation="bicubic")


def _clip(side: int, crop_mode: str = "center") -> DataConfig:
    return DataConfig(input_size=(3, side, side), crop_pct=1.0, interpolation="bicubic", mean=CLIP_MEAN, std=CLIP_STD,
                      crop_mode=crop_mode)


def _fb_tags(model: str, size: str) -> tuple:
    """Facebook's releases of one variant, as timm publishes them."""
    return (
        timm_tag(model, "fb_in1k", data=FB, file=f"convnext_{size}_1k_224_ema.pth"),
        timm_tag(model, "fb_in22k", data=FB_22K, file=f"convnext_{size}_22k_224.pth", num_classes=21841, labels=None),
        timm_tag(model, "fb_in22k_ft_in1k", data=FB, file=f"convnext_{size}_22k_1k_224.pth"),
        timm_tag(model, "fb_in22k_ft_in1k_384", data=SQUASH_384, file=f"convnext_{size}_22k_1k_384.pth"),
    )


def _in12k_tags(model: str) -> tuple:
    """timm's own ImageNet-12k training and its ImageNet-1k fine-tunes."""
    return (
        timm_tag(model, "in12k", data=IN12K, num_classes=11821, labels=None),
        timm_tag(model, "in12k_ft_in1k", data=IN12K_FT),
        timm_tag(model, "in12k_ft_in1k_384", data=SQUASH_384),
    )


def _backbones(model: str, eupe: bool = True) -> tuple:
    """Self-supervised backbones without a classifier (``num_classes=0``)."""
    tags = (timm_tag(model, "dinov3_lvd1689m", data=FULL, license="dinov3-license", num_classes=0, labels=None),)
    if eupe:
        tags += (timm_tag(model, "eupe_lvd1689m", data=FULL_256, license="fair-noncommercial-research-license",
                          num_classes=0, labels=None),)
    return tags


def _clip_tags(model: str) -> tuple:
    """LAION CLIP image towers (a 640-wide embedding head) and their fine-tunes."""
    return (
        timm_tag(model, "clip_laion2b", data=_clip(256), num_classes=640, labels=None),
        timm_tag(model, "clip_laion2b_augreg", data=_clip(256), num_classes=640, labels=None),
        timm_tag(model, "clip_laion2b_augreg_ft_in12k", data=_clip(256), num_classes=11821, labels=None),
        timm_tag(model, "clip_laion2b_augreg_ft_in12k_in1k", data=_clip(256)),
        timm_tag(model, "clip_laion2b_augreg_ft_in12k_in1k_384", data=_clip(384, "squash")),
        timm_tag(model, "clip_laion2b_augreg_ft_in1k", data=_clip(256)),
        timm_tag(model, "clip_laiona", data=_clip(256), num_classes=640, labels=None),
        timm_tag(model, "clip_laiona_320", data=_clip(320), num_classes=640, labels=None),
        timm_tag(model, "clip_laiona_augreg_320", data=_clip(320), num_classes=640, labels=None),
        timm_tag(model, "clip_laiona_augreg_ft_in1k_384", data=_clip(384)),
    )


WEIGHTS = (
    torchvision_tag("convnext_tiny", "tv_in1k", "IMAGENET1K_V1", "convnext_tiny-983f1562.pth", data=DataConfig(resize_size=236),
                    top1=82.52, top5=96.146, default=True),
    *_fb_tags("convnext_tiny", "tiny"),
    *_in12k_tags("convnext_tiny"),
    *_backbones("convnext_tiny"),
    torchvision_tag("convnext_small", "tv_in1k", "IMAGENET1K_V1", "convnext_small-0c510722.pth", data=DataConfig(resize_size=230),
                    top1=83.616, top5=96.65, default=True),
    *_fb_tags("convnext_small", "small"),
    *_in12k_tags("convnext_small"),
    *_backbones("convnext_small"),
    torchvision_tag("convnext_base", "tv_in1k", "IMAGENET1K_V1", "convnext_base-6075fbad.pth", data=DataConfig(resize_size=232),
                    top1=84.062, top5=96.87, default=True),
    *_fb_tags("convnext_base", "base"),
    *_backbones("convnext_base"),
    *_clip_tags("convnext_base"),
    torchvision_tag("convnext_large", "tv_in1k", "IMAGENET1K_V1", "convnext_large-ea097f82.pth", data=DataConfig(resize_size=232),
                    top1=84.414, top5=96.976, default=True),
    *_fb_tags("convnext_large", "large"),
    *_backbones("convnext_large", eupe=False),
)
