"""The initialisation contract: every component the core builds starts from a known state.

A component that defines ``init_weights()`` initialises itself: the core calls it
right after building the component. Every other component gets ``default_init``: each
convolution He-normal initialised for ReLU with fan-out scaling and zero bias, each
norm layer weight 1 and bias 0, and linear layers as PyTorch makes them. That is the
initialisation the bundled ResNets use (and torchvision's), so a block from anywhere
swapped into a ResNet starts like the ResNet's own blocks. On the meta device there is
nothing to initialise and nothing is done.
"""

from __future__ import annotations

from torch import nn

NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


def initialise(component: nn.Module) -> None:
    """Apply ``component.init_weights()`` if it has one, else ``default_init``."""
    if any(p.is_meta for p in component.parameters()):
        return
    own = getattr(component, "init_weights", None)
    if callable(own):
        own()
    else:
        default_init(component)


def default_init(module: nn.Module) -> None:
    """He-normal (fan-out, ReLU) convolutions with zero bias; norms at weight 1, bias 0."""
    for layer in module.modules():
        if isinstance(layer, nn.modules.conv._ConvNd):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, NORMS) and getattr(layer, "weight", None) is not None:
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)
