"""A conformance kit: checks any stem, block, head or registered model keeps the contract.

Plugin authors call these from their own tests::

    from registry_core import testing
    testing.check_block(MyBlock, in_channels=64, out_channels=128, stride=2)
    testing.check_model("my_model")

Each check raises ``ConformanceError`` (an ``AssertionError``) saying what failed.

The conformance gate (``check_plugin``, ``registry-core plugins --check NAME``) checks
every registered component without being told how to build it. A component with shape
rules (a block that keeps its width, a transition that must halve the map, a module
whose branch widths must add up) declares the constructions it is checked with::

    class DenseBlock(Block):
        conformance_examples = (
            {"in_channels": 64, "out_channels": 256, "growth": 32, "size": 8},
        )

Each example is the keyword arguments of ``check_block`` (``check_stem``,
``check_head`` for those kinds): sizes and constructor options. A component that
declares none is checked inside the smallest registered model that uses it, on the
inputs the model gives it (``check_in_model``), and one no model uses at the kit's
default shape (16 -> 32 channels, stride 1).
"""

from .components import check_block, check_head, check_model, check_stem
from .conversion import check_conversion, perturb_batchnorm
from .examples import EXAMPLE_ATTRIBUTE, check_examples, check_in_model, examples_of, models_using
from .gate import check_plugin, unavailable_models
from .toolchain import TOOLS, check_toolchain

__all__ = [
    "EXAMPLE_ATTRIBUTE",
    "TOOLS",
    "check_block",
    "check_conversion",
    "check_examples",
    "check_head",
    "check_in_model",
    "check_model",
    "check_plugin",
    "check_stem",
    "check_toolchain",
    "examples_of",
    "models_using",
    "perturb_batchnorm",
    "unavailable_models",
]
