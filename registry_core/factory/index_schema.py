"""The index's schema: what a manifest read back from ``REGISTRY_CORE_HOME`` must look
like before ``list``, ``info``, ``weights`` or ``plugins`` show any of it.

The index is a cache we wrote, but anyone who can write the home folder can edit it, so
it is read like any other file: every field is checked by type and range, names must be
well formed, file names must be plain names (advice to "place FILE in FOLDER" can never
point elsewhere), every model and plugin must belong to a distribution the environment
really has installed, and the document must carry the digest of its own content. A
document that fails any check is discarded and rebuilt; nothing of it is shown.
Needs no torch.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from ..model.data_config import DataConfig
from ..plugins.records import PluginRecord
from ..weights.tags import WeightSource, WeightTag

MAX_TEXT = 10_000
MAX_COUNT = 10**13  # parameters and the like: far above any real model
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}")
ENTRY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}(/[A-Za-z0-9][A-Za-z0-9_.\-]{0,199})?")  # converters: "timm/resnet50"
PLAIN_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-+=]{0,254}")
HUB_ID = re.compile(r"[A-Za-z0-9_.\-]{1,96}/[A-Za-z0-9_.\-]{1,96}")
KINDS = ("stem", "block", "head", "model", "converter", "weights", "dataset")
STATUSES = ("ok", "broken", "disabled")
CORE_DISTRIBUTION = "registry-core"
SECTIONS = {"models": dict, "unavailable": dict, "weights": dict, "components": dict, "plugins": list, "contested": list}
# every field a model's entry may have, with its check; a field the build adds must be listed here
MODEL_FIELDS: dict[str, Any] = {}


class IndexRejected(Exception):
    """The document is not an index we would have written: discard it."""


def content_digest(content: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def check_document(document: Any, key: dict[str, Any]) -> dict[str, Any]:
    """The content of ``document`` if it is a valid index for ``key``; else ``IndexRejected``."""
    _expect(isinstance(document, dict) and document.get("key") == key, "not this environment's index")
    content = document.get("content")
    _expect(isinstance(content, dict) and document.get("digest") == content_digest(content), "its digest does not match")
    _expect(set(content) == set(SECTIONS), "unexpected sections")
    for section, kind in SECTIONS.items():
        _expect(isinstance(content[section], kind), f"{section} is not a {kind.__name__}")
    installed = {point[2] for point in key.get("entry_points", []) if len(point) > 2} | {CORE_DISTRIBUTION}
    components = content["components"]
    for kind, names in components.items():
        _expect(kind in KINDS and isinstance(names, list) and all(_is_entry(n) for n in names), f"components of {kind!r}")
    for name, info in content["models"].items():
        check_model(name, info, installed)
    for name, reason in content["unavailable"].items():
        _expect(_is_name(name) and _is_text(reason), f"unavailable model {name!r}")
    listed = set(content["models"]) | set(content["unavailable"])
    _expect(listed == set(components.get("model", [])), "models and components disagree")
    for name, entry in content["weights"].items():
        check_weight_entry(name, entry)
    for record in content["plugins"]:
        check_plugin_record(record, installed)
    for contest in content["contested"]:
        _expect(isinstance(contest, dict) and set(contest) == {"kind", "name", "text", "settled"}
                and contest["kind"] in KINDS and _is_entry(contest["name"]) and _is_text(contest["text"])
                and isinstance(contest["settled"], bool), "a contested entry")
    return content


def check_model(name: str, info: Any, installed: set[str]) -> None:
    _expect(_is_name(name) and isinstance(info, dict) and info.get("name") == name, f"model {name!r}")
    unknown = set(info) - set(MODEL_FIELDS)
    _expect(not unknown, f"model {name!r} has unknown fields {sorted(unknown)}")
    missing = {f for f, (_, required) in MODEL_FIELDS.items() if required} - set(info)
    _expect(not missing, f"model {name!r} lacks {sorted(missing)}")
    for field, value in info.items():
        _expect(MODEL_FIELDS[field][0](value), f"model {name!r}: field {field!r}")
    _expect(info["distribution"] in installed, f"model {name!r} is credited to a distribution that is not installed")
    _expect(info["params_inference"] <= info["params"], f"model {name!r}: parameter counts")
    chans = info["input_size"][0]
    _expect(info["min_input_size"][0] == chans and len(info["mean"]) == len(info["std"]) == chans,
            f"model {name!r}: channels")
    _expect(all(m <= s for m, s in zip(info["min_input_size"][1:], info["input_size"][1:])), f"model {name!r}: sizes")
    _expect(not info["default_tag"] or info["default_tag"] in info["tags"], f"model {name!r}: default tag")


def check_weight_entry(name: str, entry: Any) -> None:
    """A tag's entry must be exactly what its ``WeightTag`` describes itself as."""
    _expect(_is_name(name) and isinstance(entry, dict), f"weights {name!r}")
    try:
        tag = tag_from_description(entry)
        same = _as_json(tag.describe()) == _as_json(entry) and tag.name == name
    except Exception:  # any malformed part: the constructors refuse it
        same = False
    _expect(same, f"weights {name!r} is not a well-formed tag")
    for source in entry["sources"]:
        _expect(not source["file"] or PLAIN_FILE.fullmatch(source["file"]) is not None, f"weights {name!r}: file name")
        _expect(not source["hub_id"] or HUB_ID.fullmatch(source["hub_id"]) is not None, f"weights {name!r}: hub id")
    for metric, value in entry["metrics"].items():
        _expect(_is_text(metric) and _is_number(value) and 0 <= value <= 100, f"weights {name!r}: metric {metric!r}")


def tag_from_description(entry: dict[str, Any]) -> WeightTag:
    """The ``WeightTag`` that ``describe()`` turned into ``entry``."""
    sources = tuple(
        WeightSource(library=s["library"], model=s["model"], member=s["member"], file=s["file"], hub_id=s["hub_id"],
                     sha256=s["sha256"], data=None if s["data_config"] is None else DataConfig.from_dict(s["data_config"]))
        for s in entry["sources"])
    labels = entry["labels"]
    return WeightTag(model=entry["model"], tag=entry["tag"], data=DataConfig.from_dict(entry["data_config"]),
                     sources=sources, labels=tuple(labels) if isinstance(labels, list) else labels,
                     num_classes=entry["num_classes"], metrics=entry["metrics"], license=entry["license"],
                     description=entry["description"], create_kwargs=entry["create_kwargs"], default=entry["default"])


def check_plugin_record(record: Any, installed: set[str]) -> None:
    _expect(isinstance(record, dict) and set(record) == set(PluginRecord.__dataclass_fields__), "a plugin record")
    _expect(all(_is_text(record[f]) for f in ("name", "distribution", "version", "entry_point", "error"))
            and record["status"] in STATUSES, "a plugin record's text")
    _expect(record["distribution"] in installed or record["status"] != "ok", "a plugin that is not installed")
    _expect(all(isinstance(record[f], list) and all(_is_text(v) for v in record[f])
                for f in ("hooks", "overrides", "contested")), "a plugin record's lists")
    provided = record["provided"]
    _expect(isinstance(provided, dict) and all(k in KINDS and isinstance(v, list) and all(_is_entry(n) for n in v)
                                               for k, v in provided.items()), "a plugin record's provisions")


def _as_json(value: Any) -> Any:
    """``value`` as JSON reads it back (tuples become lists), for comparing."""
    return json.loads(json.dumps(value))


def _expect(condition: bool, problem: str) -> None:
    if not condition:
        raise IndexRejected(problem)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_TEXT


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and NAME.fullmatch(value) is not None


def _is_entry(value: Any) -> bool:
    return isinstance(value, str) and ENTRY.fullmatch(value) is not None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT


def _is_size(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 3 and all(_is_count(v) for v in value)
            and 1 <= value[0] <= 4096 and all(1 <= v <= 8192 for v in value[1:]))


def _is_numbers(value: Any) -> bool:
    return isinstance(value, list) and 0 < len(value) <= 4096 and all(_is_number(v) for v in value)


def _is_data_config(value: Any) -> bool:
    try:
        return isinstance(value, dict) and _as_json(DataConfig.from_dict(value).to_dict()) == _as_json(value)
    except Exception:
        return False


def _is_depends(value: Any) -> bool:
    return isinstance(value, dict) and all(_is_name(k) and _is_text(v) for k, v in value.items())


MODEL_FIELDS.update({
    # field: (check, required)
    "name": (_is_name, True),
    "family": (_is_text, True),
    "plugin": (_is_text, True),
    "distribution": (_is_text, True),
    "version": (_is_text, True),
    "params": (_is_count, True),
    "params_inference": (_is_count, True),
    "gflops": (lambda v: _is_number(v) and v >= 0, False),  # counted on first request, then cached
    "gmacs": (lambda v: _is_number(v) and v >= 0, False),  # gflops / 2, shown with it
    "num_classes": (lambda v: _is_count(v) and v <= 1_000_000, True),
    "input_size": (_is_size, True),
    "min_input_size": (_is_size, True),
    "mean": (_is_numbers, True),
    "std": (lambda v: _is_numbers(v) and all(s > 0 for s in v), True),
    "interpolation": (_is_text, True),
    "crop_pct": (lambda v: _is_number(v) and 0 < v <= 4, True),
    "aux_heads": (lambda v: _is_count(v) and v <= 64, True),
    "description": (_is_text, True),
    "paper": (_is_text, True),
    "tags": (lambda v: isinstance(v, list) and all(_is_name(t) for t in v), True),
    "default_tag": (lambda v: v == "" or _is_name(v), True),
    "data_config": (_is_data_config, True),
    "depends": (_is_depends, False),  # the distributions (and their source stamps) the model is built from
})
