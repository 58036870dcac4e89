"""Hook implementations of the VGG plugin."""

from registry_core import hookimpl

from .blocks import VGGConvBlock, VGGStem
from .convert import converters
from .models import MODELS
from .weights import WEIGHTS


@hookimpl
def register_stems(register):
    register("vgg_stem", VGGStem)


@hookimpl
def register_blocks(register):
    register("vgg_conv", VGGConvBlock)


@hookimpl
def register_models(register):
    for name, builder in MODELS.items():
        register(name, builder)


@hookimpl
def register_converters(register):
    for converter in converters():
        register(converter)


@hookimpl
def register_weights(register):
    for tag in WEIGHTS:
        register(tag)
