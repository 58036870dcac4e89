"""registry-core: build any registered model by name; families come from plugins.

Importing this package loads no plugin, torchvision or timm; plugins load on the
first call that needs the registry, once.
"""

from ._version import __version__
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
from .factory.build import build_model, model_spec
from .factory.catalog import get_converter, list_converters, list_models, list_plugins, model_info
from .factory.create import create, load
from .model.compose import AuxLogits, ComposedModel, classification_loss, main_logits
from .model.flops import count_flops
from .model.interfaces import Block, Head, Stem
from .model.spec import IMAGENET_MEAN, IMAGENET_STD, AuxHeadSpec, BlockSpec, Component, ModelMeta, ModelSpec, StageSpec
from .plugins.hookspecs import hookimpl
from .plugins.host import PluginRecord, reload_plugins
from .weights.keymaps import Converter, invert_prefixes, rename_prefixes
from .weights.model_files import save
from .weights.safetensors_io import read_metadata

# Heavier modules (conversion, the trainer) load on first use of their names.
_LAZY = {
    "convert_from": "factory.conversion",
    "convert_to": "factory.conversion",
    "Trainer": "training.train",
    "TrainConfig": "training.train",
    "fit": "training.train",
    "DatasetFactory": "training.data",
    "list_datasets": "training.data",
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
    "PluginRecord",
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
    "build_model",
    "classification_loss",
    "count_flops",
    "create",
    "get_converter",
    "hookimpl",
    "invert_prefixes",
    "list_converters",
    "list_models",
    "list_plugins",
    "load",
    "main_logits",
    "model_info",
    "model_spec",
    "reload_plugins",
    "read_metadata",
    "rename_prefixes",
    "save",
]
