"""Loading a weights file into the model it describes: build once on the meta device,
then assign the file's tensors.

Create options the caller leaves unset follow the file (its recorded options, class
count and input channels), so the model is the one that was saved. A different
``num_classes`` (fresh head) or ``in_chans`` (adapted first convolution) is allowed
and reported with a warning. Nothing here calls ``create``; ``create`` calls this.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from torch import Tensor

from ..errors import UnknownModelError, WeightsError
from ..model.compose import ComposedModel
from ..plugins.host import default_host
from ..weights.adapt import prepare_state
from ..weights.assign import assign_weights
from ..weights.metadata import class_names, data_config_of, header_int, options_for_file, rebuild_hint
from ..weights.safetensors_io import read_tensors
from ..weights.validate import check_create_options, check_name
from .build import build_model


def load_file(path: str | os.PathLike, name: str | None = None, *, allow_non_finite: bool = False,
              **requested: Any) -> ComposedModel:
    """The model in ``path`` (``name``, or the one its metadata names) with its weights;
    ``requested`` are create options that replace the recorded ones. NaN or Inf in the
    file is an error unless ``allow_non_finite``."""
    if name is not None:
        check_name(name, "the model asked for")
    state, header = read_tensors(path)
    return load_state(state, header, path, name, allow_non_finite=allow_non_finite, **requested)


def load_state(state: dict[str, Tensor], header: dict[str, str], path: str | os.PathLike, name: str | None = None, *,
               allow_non_finite: bool = False, **requested: Any) -> ComposedModel:
    """``load_file`` for tensors and a header already read from ``path`` (or made like
    the one ``save`` writes, for weights converted in memory)."""
    if name is None:
        if "model" not in header:
            raise WeightsError(f"{path} does not say which model it holds; use registry_core.create(name, weights=path)")
        name = header["model"]
    elif header.get("model", name) != name:
        raise WeightsError(f"{path} holds weights for {header['model']!r}, not {name!r}; "
                           f"load it with registry_core.load(path) or create({header['model']!r}, weights=path)")
    try:
        default_host().registry.get("model", name)
    except UnknownModelError:
        if not header.get("plugin"):
            raise
        # the file says which distribution gave its model: point there, not at close matches
        saved_from = f"{header['plugin']} {header.get('plugin_version', '')}".rstrip()
        raise UnknownModelError(name, (), f"{path} was saved from {saved_from}, which is not installed here: "
                                f"pip install {header['plugin']}") from None
    options = options_for_file(header, requested, path)
    check_create_options(options, str(path))  # before anything is built from them
    file_chans = header_int(header, "in_chans", path)
    notes: list[str] = []
    model = assign_weights(lambda: build_model(name, **options), state,
                           prepare=lambda m: notes.extend(prepare_state(m, state, file_chans, path)),
                           on_error=rebuild_hint(name, header, path), allow_non_finite=allow_non_finite,
                           notes=notes, source=str(path))
    wanted_classes = requested.get("num_classes")
    if not options.get("features_only", False) and wanted_classes is not None and wanted_classes != model.num_classes:
        notes.append(f"{path}: head reset for {wanted_classes} classes (the file has {model.num_classes}); "
                     "it is freshly initialised, everything else is loaded")
        model.reset_classifier(wanted_classes)
    restore_weights_facts(model, header, path)
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=3)
    return model


def restore_weights_facts(model: ComposedModel, header: dict[str, str], path) -> None:
    """What the file says about its weights, back on the model: the preprocessing
    (``data_config``), the class names and the tag. Class names stay only while the head
    is the file's; a fresh head of another size has none."""
    data = data_config_of(header, path)
    if data is not None:
        model.data_config = data.with_channels(model.meta.input_size[0])
    try:
        names = class_names(header, path)
    except WeightsError as exc:  # unusable names must not make the weights unusable
        warnings.warn(f"{exc}; the model is loaded without class names", UserWarning, stacklevel=4)
        names = None
    model.class_names = names if names is not None and len(names) == model.num_classes else None
    model.pretrained_tag = header.get("tag", "")
