"""The pretrained weights of AlexNet: every torchvision weights enum member and
every timm tag of these architectures, with their preprocessing, metrics and files.

Class names are not listed here: the core reads ImageNet-1k's from torchvision's
metadata when it converts a file. The plugin's tests check every field against
torchvision's and timm's own metadata.
"""

from registry_core import DataConfig, torchvision_tag

TV = DataConfig()  # torchvision's V1 recipe: resize 256, crop 224, bilinear

WEIGHTS = (
    torchvision_tag("alexnet", "tv_in1k", "IMAGENET1K_V1", "alexnet-owt-7be5be79.pth", data=TV, top1=56.522, top5=79.066, default=True),
)
