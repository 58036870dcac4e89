"""ResNet (He et al., 2016), ResNeXt (Xie et al., 2017) and Wide ResNet (Zagoruyko and
Komodakis, 2016) as a registry-core plugin, in torchvision's "v1.5" layout."""
