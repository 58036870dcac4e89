"""registry-core: build any registered model by name; families come from plugins.

Importing this package loads no plugin, torchvision or timm, and not even torch: each
public name loads its module on first use, and plugins load on the first call that
needs the registry, once.
"""

from ._version import __version__
from .errors import (
    BrokenPluginError,
    ConformanceError,
    ConversionError,
    DataError,
    DivergenceError,
    DuplicateNameError,
    ExportError,
    InputSizeError,
    InvalidOverrideError,
    PluginError,
    PluginWarning,
    QuantizationError,
    RegistryCoreError,
    ScaffoldError,
    SpecError,
    TrainingError,
    UnknownComponentError,
    UnknownModelError,
    UnknownNameError,
    WeightsError,
    WriteError,
)

# Every name that needs torch loads on first use, so that importing the package (which
# `registry-core --help` does) costs nothing until a model, a file or a plugin is wanted.
_LAZY_FROM = {
    "factory.build": ("build_model", "model_spec"),
    "factory.catalog": ("get_component", "get_converter", "list_components", "list_converters", "list_models",
                        "list_plugins", "model_info"),
    "factory.conversion": ("convert_from", "convert_to"),
    "factory.create": ("create", "load"),
    "factory.identify": ("identify_checkpoint",),
    "factory.pretrained": ("list_pretrained", "pretrained_info"),
    "inference.bench_settings": ("BenchmarkSettings",),
    "inference.benchmark": ("benchmark", "BenchmarkReport"),
    "inference.export": ("export", "read_export_metadata", "ExportResult"),
    "inference.predict": ("predict", "Prediction", "ClassScore", "find_images", "read_image"),
    "inference.quantize": ("quantize", "QuantizationReport"),
    "inference.runtime": ("OnnxModel",),
    "inference.transforms": ("resolve_data_config", "transforms"),
    "model.compose": ("AuxLogits", "ComposedModel", "classification_loss", "main_logits"),
    "model.data_config": ("DataConfig",),
    "model.drop_path": ("DropPath", "drop_path_rates"),
    "model.flops": ("count_flops",),
    "model.heads": ("LayerNorm2d",),
    "model.interfaces": ("Block", "FeatureTap", "Head", "Stem"),
    "model.spec": ("IMAGENET_MEAN", "IMAGENET_STD", "AuxHeadSpec", "BlockSpec", "Component", "ModelMeta", "ModelSpec",
                   "StageSpec"),
    "plugins.hookspecs": ("hookimpl",),
    "plugins.host": ("PluginRecord", "add_plugin", "reload_plugins"),
    "training.data": ("DatasetFactory", "list_datasets"),
    "training.train": ("Trainer", "TrainConfig", "fit"),
    "weights.keymaps": ("Converter", "invert_prefixes", "rename_prefixes"),
    "weights.model_files": ("save",),
    "weights.safetensors_io": ("read_metadata",),
    "weights.tags": ("WeightSource", "WeightTag", "timm_tag", "torchvision_tag"),
}
_LAZY = {name: module for module, names in _LAZY_FROM.items() for name in names}


def __getattr__(name):
    import importlib
    import importlib.util

    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f".{name}", __name__)  # a submodule, e.g. registry_core.testing
    raise AttributeError(f"module 'registry_core' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY})


__all__ = [
    "__version__",
    "add_plugin",
    "AuxHeadSpec",
    "AuxLogits",
    "BenchmarkReport",
    "BenchmarkSettings",
    "Block",
    "BlockSpec",
    "BrokenPluginError",
    "ClassScore",
    "Component",
    "ComposedModel",
    "ConformanceError",
    "ConversionError",
    "Converter",
    "DataError",
    "DataConfig",
    "DivergenceError",
    "DatasetFactory",
    "DropPath",
    "DuplicateNameError",
    "ExportError",
    "ExportResult",
    "FeatureTap",
    "Head",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "InputSizeError",
    "InvalidOverrideError",
    "LayerNorm2d",
    "ModelMeta",
    "ModelSpec",
    "OnnxModel",
    "PluginError",
    "Prediction",
    "PluginRecord",
    "PluginWarning",
    "QuantizationError",
    "QuantizationReport",
    "RegistryCoreError",
    "ScaffoldError",
    "SpecError",
    "StageSpec",
    "Stem",
    "TrainConfig",
    "Trainer",
    "TrainingError",
    "UnknownComponentError",
    "UnknownModelError",
    "UnknownNameError",
    "WeightSource",
    "WeightTag",
    "WeightsError",
    "WriteError",
    "benchmark",
    "build_model",
    "classification_loss",
    "convert_from",
    "convert_to",
    "count_flops",
    "create",
    "drop_path_rates",
    "export",
    "find_images",
    "fit",
    "get_component",
    "get_converter",
    "hookimpl",
    "identify_checkpoint",
    "invert_prefixes",
    "list_components",
    "list_converters",
    "list_datasets",
    "list_models",
    "list_plugins",
    "list_pretrained",
    "load",
    "main_logits",
    "model_info",
    "model_spec",
    "predict",
    "quantize",
    "pretrained_info",
    "read_export_metadata",
    "read_image",
    "read_metadata",
    "resolve_data_config",
    "reload_plugins",
    "rename_prefixes",
    "save",
    "timm_tag",
    "torchvision_tag",
    "transforms",
]
