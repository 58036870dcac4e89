"""The pretrained weights of GoogLeNet and Inception v3: every torchvision weights enum member and
every timm tag of these architectures, with their preprocessing, metrics and files.

Class names are not listed here: the core reads ImageNet-1k's from torchvision's
metadata when it converts a file. The plugin's tests check every field against
torchvision's and timm's own metadata.
"""

from registry_core import DataConfig, timm_tag, torchvision_tag

TV = DataConfig()  # torchvision's V1 recipe: resize 256, crop 224, bilinear
TV_299 = DataConfig(input_size=(3, 299, 299), resize_size=342)  # torchvision's Inception v3: resize 342, crop 299
BICUBIC_299 = DataConfig(input_size=(3, 299, 299), interpolation="bicubic")  # 299 at crop 0.875, bicubic
INCEPTION_299 = DataConfig(input_size=(3, 299, 299), interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))  # the original Inception input: 299, bicubic, scaled to [-1, 1]

WEIGHTS = (
    torchvision_tag("googlenet", "tv_in1k", "IMAGENET1K_V1", "googlenet-1378be20.pth", data=TV, top1=69.778, top5=89.53, default=True),
    torchvision_tag("inception_v3", "tv_in1k", "IMAGENET1K_V1", "inception_v3_google-0cc3c7bd.pth", data=TV_299, top1=77.294, top5=93.45, timm_file="inception_v3_google-1a9a5a14.pth",
                    timm_data=INCEPTION_299, default=True),
    timm_tag("inception_v3", "gluon_in1k", data=BICUBIC_299),
    timm_tag("inception_v3", "tf_adv_in1k", data=INCEPTION_299),
    timm_tag("inception_v3", "tf_in1k", data=INCEPTION_299),
)
