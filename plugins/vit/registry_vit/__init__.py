"""Vision Transformers (Dosovitskiy et al., 2021) as a registry-core plugin, in
torchvision's architecture, with converters for torchvision's and timm's layouts."""
