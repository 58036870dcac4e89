"""The pretrained weights of the ViTs: every torchvision weights enum member and every timm
tag of these architectures, with their preprocessing, metrics and files.

torchvision's SWAG end-to-end weights were fine-tuned at 384, 512 or 518 pixels: their
tags build the model for that image size (``create_kwargs``), as torchvision does.
timm names the architectures ``vit_base_patch16_224`` and so on. Class names are not
listed here: the core reads ImageNet-1k's from torchvision's metadata when it converts
a file. The plugin's tests check every field against torchvision's and timm's own
metadata.
"""

from registry_core import IMAGENET_MEAN, IMAGENET_STD, DataConfig, timm_tag, torchvision_tag

from .models import VARIANTS

TV = DataConfig()  # torchvision's V1 recipe: resize 256, crop 224, bilinear
TV_L16 = DataConfig(resize_size=242)  # ViT-L/16's V1 weights: resize 242, crop 224
SWAG_LINEAR = DataConfig(crop_pct=1.0, interpolation="bicubic")  # 224 uncropped, bicubic
INCEPTION = (0.5, 0.5, 0.5)  # inputs scaled to [-1, 1]
JAX = DataConfig(crop_pct=0.9, interpolation="bicubic", mean=INCEPTION, std=INCEPTION)  # timm's ports of Google's weights
FB = DataConfig(crop_pct=0.9, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD)  # DINO and MAE
CLIP = DataConfig(crop_pct=1.0, interpolation="bicubic", mean=(0.48145466, 0.4578275, 0.40821073),
                  std=(0.26862954, 0.26130258, 0.27577711))
SWAG_LICENSE = "cc-by-nc-4.0"


def swag_e2e(size: int) -> dict:
    """A SWAG end-to-end tag's facts: evaluated at ``size`` uncropped, bicubic, on a model built for ``size``."""
    data = DataConfig(input_size=(3, size, size), crop_pct=1.0, interpolation="bicubic")
    return {"data": data, "create_kwargs": {"image_size": size}, "license": SWAG_LICENSE}


def _timm(model: str, tag: str, **fields) -> object:
    return timm_tag(model, tag, timm_model=VARIANTS[model].timm_name, **{"data": JAX, **fields})


WEIGHTS = (
    torchvision_tag("vit_b_16", "tv_in1k", "IMAGENET1K_V1", "vit_b_16-c867db91.pth", data=TV, top1=81.072, top5=95.318, default=True),
    torchvision_tag("vit_b_16", "swag_e2e_in1k", "IMAGENET1K_SWAG_E2E_V1", "vit_b_16_swag-9ac1b537.pth", top1=85.304, top5=97.65, **swag_e2e(384)),
    torchvision_tag("vit_b_16", "swag_linear_in1k", "IMAGENET1K_SWAG_LINEAR_V1", "vit_b_16_lc_swag-4e70ced5.pth", data=SWAG_LINEAR, top1=81.886, top5=96.18, license=SWAG_LICENSE),
    _timm("vit_b_16", "augreg2_in21k_ft_in1k"),
    _timm("vit_b_16", "augreg_in1k", file="B_16-i1k-300ep-lr_0.001-aug_strong2-wd_0.1-do_0.1-sd_0.1--imagenet2012-steps_20k-lr_0.01-res_224.npz"),
    _timm("vit_b_16", "augreg_in21k", file="B_16-i21k-300ep-lr_0.001-aug_medium1-wd_0.1-do_0.0-sd_0.0.npz", num_classes=21843, labels=None),
    _timm("vit_b_16", "augreg_in21k_ft_in1k", file="B_16-i21k-300ep-lr_0.001-aug_medium1-wd_0.1-do_0.0-sd_0.0--imagenet2012-steps_20k-lr_0.01-res_224.npz"),
    _timm("vit_b_16", "bamboo", data=CLIP, license="", num_classes=115217, labels=None),
    _timm("vit_b_16", "dino", data=FB, file="dino_vitbase16_pretrain.pth", num_classes=0, labels=None),
    _timm("vit_b_16", "mae", data=FB, file="mae_pretrain_vit_base.pth", license="cc-by-nc-4.0", num_classes=0, labels=None),
    _timm("vit_b_16", "orig_in21k", num_classes=0, labels=None),
    _timm("vit_b_16", "orig_in21k_ft_in1k", file="jx_vit_base_p16_224-80ecf9dd.pth"),
    _timm("vit_b_16", "sam_in1k", file="ViT-B_16.npz"),
    torchvision_tag("vit_b_32", "tv_in1k", "IMAGENET1K_V1", "vit_b_32-d86f8d99.pth", data=TV, top1=75.912, top5=92.466, default=True),
    _timm("vit_b_32", "augreg_in1k", file="B_32-i1k-300ep-lr_0.001-aug_medium2-wd_0.1-do_0.1-sd_0.1--imagenet2012-steps_20k-lr_0.01-res_224.npz"),
    _timm("vit_b_32", "augreg_in21k", file="B_32-i21k-300ep-lr_0.001-aug_medium1-wd_0.03-do_0.0-sd_0.0.npz", num_classes=21843, labels=None),
    _timm("vit_b_32", "augreg_in21k_ft_in1k", file="B_32-i21k-300ep-lr_0.001-aug_medium1-wd_0.03-do_0.0-sd_0.0--imagenet2012-steps_20k-lr_0.03-res_224.npz"),
    _timm("vit_b_32", "orig_in21k", num_classes=0, labels=None),
    _timm("vit_b_32", "sam_in1k", file="ViT-B_32.npz"),
    torchvision_tag("vit_l_16", "tv_in1k", "IMAGENET1K_V1", "vit_l_16-852ce7e3.pth", data=TV_L16, top1=79.662, top5=94.638, default=True),
    torchvision_tag("vit_l_16", "swag_e2e_in1k", "IMAGENET1K_SWAG_E2E_V1", "vit_l_16_swag-4f3808c9.pth", top1=88.064, top5=98.512, **swag_e2e(512)),
    torchvision_tag("vit_l_16", "swag_linear_in1k", "IMAGENET1K_SWAG_LINEAR_V1", "vit_l_16_lc_swag-4d563306.pth", data=SWAG_LINEAR, top1=85.146, top5=97.422, license=SWAG_LICENSE),
    _timm("vit_l_16", "augreg_in21k", file="L_16-i21k-300ep-lr_0.001-aug_medium1-wd_0.1-do_0.1-sd_0.1.npz", num_classes=21843, labels=None),
    _timm("vit_l_16", "augreg_in21k_ft_in1k", file="L_16-i21k-300ep-lr_0.001-aug_medium1-wd_0.1-do_0.1-sd_0.1--imagenet2012-steps_20k-lr_0.01-res_224.npz"),
    _timm("vit_l_16", "mae", data=FB, file="mae_pretrain_vit_large.pth", license="cc-by-nc-4.0", num_classes=0, labels=None),
    _timm("vit_l_16", "orig_in21k", num_classes=0, labels=None),
    torchvision_tag("vit_l_32", "tv_in1k", "IMAGENET1K_V1", "vit_l_32-c7638314.pth", data=TV, top1=76.972, top5=93.07, default=True),
    _timm("vit_l_32", "orig_in21k", num_classes=0, labels=None),
    torchvision_tag("vit_h_14", "swag_e2e_in1k", "IMAGENET1K_SWAG_E2E_V1", "vit_h_14_swag-80465313.pth", top1=88.552, top5=98.694, default=True, **swag_e2e(518)),
    torchvision_tag("vit_h_14", "swag_linear_in1k", "IMAGENET1K_SWAG_LINEAR_V1", "vit_h_14_lc_swag-c1eb923e.pth", data=SWAG_LINEAR, top1=85.708, top5=97.73, license=SWAG_LICENSE),
    _timm("vit_h_14", "mae", data=FB, file="mae_pretrain_vit_huge.pth", license="cc-by-nc-4.0", num_classes=0, labels=None),
    _timm("vit_h_14", "orig_in21k", num_classes=0, labels=None),
)
