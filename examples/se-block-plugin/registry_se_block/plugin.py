"""Hook implementations of the SE plugin: it hands over a block, a model and a converter."""

from registry_core import hookimpl

from .blocks import SEBottleneck
from .convert import SE_RESNET50_FROM_TIMM
from .models import se_resnet50


@hookimpl
def register_blocks(register):
    register("se_bottleneck", SEBottleneck)


@hookimpl
def register_models(register):
    register("se_resnet50", se_resnet50)


@hookimpl
def register_converters(register):
    register(SE_RESNET50_FROM_TIMM)
