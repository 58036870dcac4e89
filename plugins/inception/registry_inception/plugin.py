"""Hook implementations of the Inception plugin."""

from registry_core import hookimpl

from .blocks import GoogLeNetInception, InceptionA, InceptionB, InceptionC, InceptionD, InceptionE, MaxPoolBlock
from .convert import CONVERTERS
from .heads import GoogLeNetAuxHead, InceptionV3AuxHead
from .models import googlenet, inception_v3
from .stems import GoogLeNetStem, InceptionV3Stem
from .weights import WEIGHTS


@hookimpl
def register_stems(register):
    register("googlenet_stem", GoogLeNetStem)
    register("inception_v3_stem", InceptionV3Stem)


@hookimpl
def register_blocks(register):
    register("googlenet_pool", MaxPoolBlock)
    register("googlenet_inception", GoogLeNetInception)
    register("inception_a", InceptionA)
    register("inception_b", InceptionB)
    register("inception_c", InceptionC)
    register("inception_d", InceptionD)
    register("inception_e", InceptionE)


@hookimpl
def register_heads(register):
    register("googlenet_aux", GoogLeNetAuxHead)
    register("inception_v3_aux", InceptionV3AuxHead)


@hookimpl
def register_models(register):
    register("googlenet", googlenet)
    register("inception_v3", inception_v3)


@hookimpl
def register_converters(register):
    for converter in CONVERTERS:
        register(converter)


@hookimpl
def register_weights(register):
    for tag in WEIGHTS:
        register(tag)
