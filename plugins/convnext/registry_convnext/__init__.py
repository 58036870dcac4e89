"""ConvNeXt (Liu et al., 2022) as a registry-core plugin, in torchvision's architecture,
with converters for torchvision's and timm's checkpoints."""
