"""Hook implementations of the LeNet plugin."""

from registry_core import hookimpl

from .blocks import LeNetConvBlock, LeNetStem
from .models import lenet5


@hookimpl
def register_stems(register):
    register("lenet_stem", LeNetStem)


@hookimpl
def register_blocks(register):
    register("lenet_conv", LeNetConvBlock)


@hookimpl
def register_models(register):
    register("lenet5", lenet5)
