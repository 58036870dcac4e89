"""registry-core: build any registered model by name; families come from plugins.

Importing this package loads no plugin, torchvision or timm; plugins load on the
first call that needs the registry, once.
"""

__version__ = "0.1.0"

from .compose import AuxLogits, ComposedModel, classification_loss, main_logits
from .converters import Converter, invert_prefixes, rename_prefixes
from .errors import (
    BrokenPluginError,
    ConformanceError,
    ConversionError,
    DataError,
    DuplicateNameError,
    InvalidOverrideError,
    PluginError,
    PluginWarning,
    RegistryCoreError,
    ScaffoldError,
    SpecError,
    TrainingError,
    UnknownComponentError,
    UnknownModelError,
    UnknownNameError,
    WeightsError,
)
from .factory import (
    count_flops,
    create,
    get_converter,
    list_converters,
    list_models,
    list_plugins,
    model_info,
    model_spec,
)
from .hookspecs import hookimpl
from .interfaces import Block, Head, Stem
from .plugins import reload_plugins
from .spec import IMAGENET_MEAN, IMAGENET_STD, AuxHeadSpec, BlockSpec, Component, ModelMeta, ModelSpec, StageSpec

# Heavier modules (safetensors I/O, the trainer) load on first use of their names.
_LAZY = {
    "save": "weights",
    "load": "weights",
    "read_metadata": "weights",
    "Trainer": "train",
    "TrainConfig": "train",
    "fit": "train",
    "DatasetFactory": "data",
    "list_datasets": "data",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'registry_core' has no attribute {name!r}")


__all__ = [*_LAZY,
    "__version__",
    "AuxHeadSpec",
    "AuxLogits",
    "Block",
    "BlockSpec",
    "BrokenPluginError",
    "Component",
    "ComposedModel",
    "ConformanceError",
    "ConversionError",
    "Converter",
    "DataError",
    "DuplicateNameError",
    "Head",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "InvalidOverrideError",
    "ModelMeta",
    "ModelSpec",
    "PluginError",
    "PluginWarning",
    "RegistryCoreError",
    "ScaffoldError",
    "SpecError",
    "StageSpec",
    "Stem",
    "TrainingError",
    "UnknownComponentError",
    "UnknownModelError",
    "UnknownNameError",
    "WeightsError",
    "classification_loss",
    "count_flops",
    "create",
    "get_converter",
    "hookimpl",
    "invert_prefixes",
    "list_converters",
    "list_models",
    "list_plugins",
    "main_logits",
    "model_info",
    "model_spec",
    "reload_plugins",
    "rename_prefixes",
]
