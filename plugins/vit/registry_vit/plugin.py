"""Hook implementations of the ViT plugin."""

from registry_core import hookimpl

from .blocks import EncoderBlock, PatchEmbedStem
from .convert import CONVERTERS
from .models import MODELS
from .weights import WEIGHTS


@hookimpl
def register_stems(register):
    register("patch_embed", PatchEmbedStem)


@hookimpl
def register_blocks(register):
    register("vit_block", EncoderBlock)


@hookimpl
def register_models(register):
    for name, builder in MODELS.items():
        register(name, builder)


@hookimpl
def register_converters(register):
    for converter in CONVERTERS:
        register(converter)


@hookimpl
def register_weights(register):
    for tag in WEIGHTS:
        register(tag)
