"""Hook implementations of the SE plugin: it hands over a block, a model and a converter."""

from registry_core import hookimpl

from .blocks import se_bottleneck
from .convert import SE_RESNET50_FROM_TIMM
from .models import se_resnet50


@hookimpl
def register_blocks(register):
    register("se_bottleneck", se_bottleneck)  # the class is built on first use, on the registered bottleneck


@hookimpl
def register_models(register):
    register("se_resnet50", se_resnet50)


@hookimpl
def register_converters(register):
    register(SE_RESNET50_FROM_TIMM)
