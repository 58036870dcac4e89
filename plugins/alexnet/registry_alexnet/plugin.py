"""Hook implementations of the AlexNet plugin."""

from registry_core import hookimpl

from .blocks import AlexNetConvBlock, AlexNetStem
from .convert import TORCHVISION
from .models import alexnet
from .weights import WEIGHTS


@hookimpl
def register_stems(register):
    register("alexnet_stem", AlexNetStem)


@hookimpl
def register_blocks(register):
    register("alexnet_conv", AlexNetConvBlock)


@hookimpl
def register_models(register):
    register("alexnet", alexnet)


@hookimpl
def register_converters(register):
    register(TORCHVISION)


@hookimpl
def register_weights(register):
    for tag in WEIGHTS:
        register(tag)
