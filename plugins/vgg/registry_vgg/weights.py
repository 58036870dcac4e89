"""The pretrained weights of VGG: every torchvision weights enum member and
every timm tag of these architectures, with their preprocessing, metrics and files.

Class names are not listed here: the core reads ImageNet-1k's from torchvision's
metadata when it converts a file. The plugin's tests check every field against
torchvision's and timm's own metadata.
"""

from registry_core import DataConfig, torchvision_tag

TV = DataConfig()  # torchvision's V1 recipe: resize 256, crop 224, bilinear
# the features-only VGG-16 ported from Caffe: 0..255 input less the channel means
CAFFE = DataConfig(mean=(0.48235, 0.45882, 0.40784), std=(1 / 255, 1 / 255, 1 / 255))

WEIGHTS = (
    torchvision_tag("vgg11", "tv_in1k", "IMAGENET1K_V1", "vgg11-8a719046.pth", data=TV, top1=69.02, top5=88.628, timm_file="", default=True),
    torchvision_tag("vgg11_bn", "tv_in1k", "IMAGENET1K_V1", "vgg11_bn-6002323d.pth", data=TV, top1=70.37, top5=89.81, timm_file="", default=True),
    torchvision_tag("vgg13", "tv_in1k", "IMAGENET1K_V1", "vgg13-19584684.pth", data=TV, top1=69.928, top5=89.246, timm_file="", default=True),
    torchvision_tag("vgg13_bn", "tv_in1k", "IMAGENET1K_V1", "vgg13_bn-abd245e5.pth", data=TV, top1=71.586, top5=90.374, timm_file="", default=True),
    torchvision_tag("vgg16", "tv_in1k", "IMAGENET1K_V1", "vgg16-397923af.pth", data=TV, top1=71.592, top5=90.382, timm_file="", default=True),
    torchvision_tag("vgg16", "tv_features_in1k", "IMAGENET1K_FEATURES", "vgg16_features-amdegroot-88682ab5.pth", data=CAFFE, labels=None,
                    description="features only: the classifier is not trained"),
    torchvision_tag("vgg16_bn", "tv_in1k", "IMAGENET1K_V1", "vgg16_bn-6c64b313.pth", data=TV, top1=73.36, top5=91.516, timm_file="", default=True),
    torchvision_tag("vgg19", "tv_in1k", "IMAGENET1K_V1", "vgg19-dcbb9e9d.pth", data=TV, top1=72.376, top5=90.876, timm_file="", default=True),
    torchvision_tag("vgg19_bn", "tv_in1k", "IMAGENET1K_V1", "vgg19_bn-c79401a0.pth", data=TV, top1=74.218, top5=91.842, timm_file="", default=True),
)
