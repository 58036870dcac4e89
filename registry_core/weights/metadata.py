"""The metadata format of our weights files: what a header records, and reading it back.

A header records how the model was created (name and create-time options), which
plugin gave it, and its input contract, all as strings; see ``docs/weights.md``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .._version import __version__
from ..errors import SpecError, WeightsError
from ..model.compose import ComposedModel
from ..model.data_config import DataConfig
from .validate import check_create_options, parse_json


def model_metadata(model: ComposedModel) -> dict[str, str]:
    """What ``save`` records about ``model``: enough to rebuild it and to feed it."""
    if not isinstance(model, ComposedModel) or not model.model_name or model.provenance is None:
        raise WeightsError("save() needs a model made by registry_core.create (it records the model's name)")
    provenance = model.provenance
    meta = model.meta
    header = {
        "format": "pt",
        "registry_core": __version__,
        "model": model.model_name,
        "create_kwargs": to_json(model.create_kwargs),
        "in_chans": str(meta.input_size[0]),
        "aux_heads": str(len(model.aux_heads)),
        "plugin": provenance.distribution or provenance.plugin,
        "plugin_version": provenance.version,
        "input_size": to_json(meta.input_size),
        "mean": to_json(meta.mean),
        "std": to_json(meta.std),
        "interpolation": meta.interpolation,
        "crop_pct": str(meta.crop_pct),
    }
    if not model.features_only:
        header["num_classes"] = str(model.num_classes)
    header["data_config"] = model.data_config.to_json()
    if model.pretrained_tag:
        header["tag"] = model.pretrained_tag
    if model.class_names is not None and not model.features_only:
        if len(model.class_names) != model.num_classes:
            raise WeightsError(f"the model names {len(model.class_names)} classes but has {model.num_classes} outputs")
        header["classes"] = classes_entry(model.class_names)
    return header


def to_json(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True)
    except TypeError as exc:
        raise WeightsError(f"cannot record {value!r} in a weights file: {exc}") from None


def _from_json(value: Any) -> Any:
    """JSON has no tuples; options go back to the builders as tuples, as they were."""
    if isinstance(value, list):
        return tuple(_from_json(v) for v in value)
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    return value


def recorded_options(header: Mapping[str, str], path) -> dict[str, Any]:
    """The create options a header records (``create_kwargs``), as the builders take them."""
    recorded = _from_json(parse_json(header.get("create_kwargs", "{}"), "create_kwargs", path))
    if not isinstance(recorded, dict):
        raise WeightsError(f"{path}: its create_kwargs metadata is not a JSON object")
    check_create_options(recorded, f"{path} records")
    return recorded


def header_int(header: Mapping[str, str], key: str, path) -> int | None:
    if key not in header:
        return None
    try:
        return int(header[key])
    except ValueError:
        raise WeightsError(f"{path}: metadata {key}={header[key]!r} is not an integer") from None


def classes_entry(names: Sequence[str]) -> str:
    """The ``classes`` entry a trainer records: a JSON list, so a name may hold any
    character (older versions joined names with commas, which a comma in a name broke)."""
    return json.dumps(list(names), ensure_ascii=False)


def class_names(header: Mapping[str, str], path) -> list[str] | None:
    """The class names a header records in ``classes``, in label order; ``None`` if none.

    An older comma-joined value is read when it splits into exactly the file's class
    count; otherwise it is ambiguous (some name held a comma), a ``WeightsError``."""
    if "classes" not in header:
        return None
    value, count = header["classes"], header_int(header, "num_classes", path)
    try:
        names = parse_json(value, "classes", path)
    except WeightsError:
        names = None
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        if count is not None and len(names) != count:
            raise WeightsError(f"{path}: its classes metadata lists {len(names)} names for a model of {count} classes")
        return names
    if names is not None:  # JSON, but not a list of names: never split its text into "names"
        raise WeightsError(f"{path}: its classes metadata is not a list of names (a name must be text)")
    names = value.split(",")
    if len(names) != (1 if count is None else count):
        raise WeightsError(f"{path} records its class names joined by commas (an older registry-core) and they split "
                           f"into {len(names)} names{'' if count is None else f' for {count} classes'}: a name holds "
                           f"a comma, so the split is ambiguous; re-save it with classes as a JSON list")
    return names


def data_config_of(header: Mapping[str, str], path) -> DataConfig | None:
    """The preprocessing a header records: its ``data_config`` entry or, in files written
    before there was one, the ``input_size``/``mean``/``std``/``interpolation``/``crop_pct``
    entries; ``None`` when it records neither."""
    try:
        if "data_config" in header:
            return DataConfig.from_dict(parse_json(header["data_config"], "data_config", path))
        if "input_size" not in header:
            return None
        legacy = {key: parse_json(header[key], key, path) for key in ("input_size", "mean", "std") if key in header}
        if "interpolation" in header:
            legacy["interpolation"] = header["interpolation"]
        if "crop_pct" in header:
            legacy["crop_pct"] = float(header["crop_pct"])
        return DataConfig.from_dict(legacy)
    except (SpecError, ValueError, TypeError) as exc:
        raise WeightsError(f"{path}: its data config metadata is unusable: {exc}") from None


def options_for_file(header: Mapping[str, str], requested: Mapping[str, Any], path) -> dict[str, Any]:
    """Create options for the model a file holds: the recorded ones, replaced by
    ``requested``, with the file's class count and input channels where not asked."""
    options = {**recorded_options(header, path), **requested}
    file_classes, file_chans = header_int(header, "num_classes", path), header_int(header, "in_chans", path)
    if not options.get("features_only", False) and file_classes is not None:
        options["num_classes"] = file_classes
    if options.get("in_chans") is None and file_chans is not None:
        options["in_chans"] = file_chans
    return options


def rebuild_hint(name: str, header: Mapping[str, str], path) -> str:
    """How to call ``create`` so that it builds what the file was saved from."""
    if "create_kwargs" not in header:
        return ""
    call = ", ".join([repr(name), *(f"{k}={v!r}" for k, v in recorded_options(header, path).items())])
    return f" (the file was saved from create({call}); pass the same options, or use registry_core.load({str(path)!r}))"
