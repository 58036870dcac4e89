"""Hook implementations of the ResNet plugin."""

from registry_core import hookimpl

from .blocks import BasicBlock, BottleneckBlock, CifarStem, ResNetStem
from .convert import CONVERTERS
from .models import CIFAR_MODELS, IMAGENET_MODELS
from .weights import WEIGHTS


@hookimpl
def register_stems(register):
    register("resnet_stem", ResNetStem)
    register("cifar_stem", CifarStem)


@hookimpl
def register_blocks(register):
    register("basic", BasicBlock)
    register("bottleneck", BottleneckBlock)


@hookimpl
def register_models(register):
    for name, builder in {**IMAGENET_MODELS, **CIFAR_MODELS}.items():
        register(name, builder)


@hookimpl
def register_converters(register):
    for converter in CONVERTERS:
        register(converter)


@hookimpl
def register_weights(register):
    for tag in WEIGHTS:
        register(tag)
