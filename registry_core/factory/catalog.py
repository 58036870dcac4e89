"""What the registry holds: model, converter and plugin listings, and ``model_info``.

The listings answer from the live plugin host when this process has loaded one, and
otherwise from the manifest (``manifest.py``), without importing torch or any plugin.
Looking up an object to use (``get_component``, ``get_converter``) loads the plugins.
"""

from __future__ import annotations

import fnmatch
import functools
from typing import TYPE_CHECKING, Any

from ..arguments import check_name, check_optional_name, check_optional_number, check_pattern
from ..errors import InvalidOverrideError, RegistryCoreError, SpecError, UnknownComponentError, UnknownModelError
from ..plugins.records import PluginRecord
from . import manifest

if TYPE_CHECKING:
    from ..model.compose import ComposedModel
    from ..model.data_config import DataConfig
    from ..plugins.host import PluginHost
    from ..weights.keymaps import Converter

KIND_NAMES = ("stem", "block", "head", "model", "converter", "weights", "dataset")
SORT_KEYS = ("name", "params", "gflops", "gmacs")
TUPLE_FIELDS = ("input_size", "min_input_size", "mean", "std")


def default_host() -> PluginHost:
    from ..plugins.host import default_host as load

    return load()


def list_models(pattern: str = "*", *, family: str | None = None, plugin: str | None = None,
                max_params: float | None = None, max_gflops: float | None = None, input_size: int | None = None,
                pretrained: bool = False, sort: str = "name") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, filtered and sorted.

    ``family`` and ``plugin`` (its name or distribution) match exactly; ``max_params``
    and ``max_gflops`` are upper bounds; ``input_size`` is the default image side;
    ``pretrained=True`` keeps models with a registered torchvision or timm converter
    (whose pretrained weights can be brought in). ``sort`` is name, params, gflops or
    gmacs (the same order: a multiply-add is two FLOPs).
    """
    if sort not in SORT_KEYS:
        raise InvalidOverrideError("sort", f"must be one of {', '.join(SORT_KEYS)}, got {sort!r:.80}")
    pattern = check_pattern(pattern)
    family, plugin = check_optional_name(family, "family"), check_optional_name(plugin, "plugin")
    max_params = check_optional_number(max_params, "max_params", minimum=0)
    max_gflops = check_optional_number(max_gflops, "max_gflops", minimum=0)
    input_size = check_optional_number(input_size, "input_size", minimum=1, integer=True)
    host = manifest.live_host()
    filtered = any(v not in (None, False) for v in (family, plugin, max_params, max_gflops, input_size, pretrained))
    if not filtered and sort == "name":  # every registered name, buildable or not: `list` says which is which
        if host is not None:
            return host.registry.names("model", pattern)
        content = manifest.current()
        return sorted(n for n in {*content["models"], *content["unavailable"]} if fnmatch.fnmatchcase(n, pattern))
    infos = _all_model_infos(host, pattern, flops=max_gflops is not None or sort in ("gflops", "gmacs"))
    converters = set(list_converters())

    def keep(name: str, info: dict[str, Any]) -> bool:
        return (fnmatch.fnmatchcase(name, pattern)
                and (family is None or info["family"] == family)
                and (plugin is None or plugin in (info["plugin"], info["distribution"]))
                and (max_params is None or info["params"] <= max_params)
                and (max_gflops is None or info["gflops"] <= max_gflops)
                and (input_size is None or max(info["input_size"][1:]) == input_size)
                and (not pretrained or any(f"{lib}/{name}" in converters for lib in ("torchvision", "timm"))))

    names = [name for name, info in infos.items() if keep(name, info)]
    key = "gflops" if sort == "gmacs" else sort
    return sorted(names, key=lambda n: (infos[n][key], n) if sort != "name" else (n,))


def _all_model_infos(host: Any, pattern: str, flops: bool) -> dict[str, dict[str, Any]]:
    """The infos of the models matching ``pattern`` (FLOPs are counted for those only)."""
    if host is None:
        models = {n: info for n, info in manifest.current()["models"].items() if fnmatch.fnmatchcase(n, pattern)}
        if flops:
            counted = _counted_gflops([name for name, info in models.items() if "gflops" not in info])
            for name, info in models.items():
                info.setdefault("gflops", counted.get(name))
                with_gmacs(info)
        return models
    infos = {}
    for name in host.registry.names("model", pattern):
        try:
            infos[name] = live_model_info(name, flops=flops)
        except Exception:  # an unbuildable model cannot match a filter; `list` reports it
            continue
    if flops:
        manifest.remember("gflops", {name: info["gflops"] for name, info in infos.items()}, host)
    return infos


def model_infos(names: list[str], *, flops: bool = True) -> dict[str, dict[str, Any] | Exception]:
    """``model_info`` of each of ``names`` in one pass (one manifest read); a model that
    cannot be described maps to the error saying why."""
    if manifest.live_host() is None:
        content = manifest.current()
        return {name: _from_manifest(content, name, flops) for name in names}
    infos: dict[str, dict[str, Any] | Exception] = {}
    for name in names:
        try:
            infos[name] = live_model_info(name, flops=flops)
        except RegistryCoreError as exc:
            infos[name] = exc
    if flops:
        host = manifest.live_host()
        manifest.remember("gflops", {n: info["gflops"] for n, info in infos.items() if isinstance(info, dict)}, host)
    return infos


def get_converter(source: str, model: str) -> Converter:
    """The registered converter between ``source``'s layout (e.g. "torchvision") and ours for ``model``."""
    return default_host().registry.get("converter", f"{source}/{model}").obj


def list_converters(pattern: str = "*") -> list[str]:
    """Registered converter keys (``source/model``) matching ``pattern``, sorted."""
    return list_components("converter", pattern)


def get_component(kind: str, name: str) -> Any:
    """The registered object of ``kind`` (stem, block, head, model, converter, dataset)
    called ``name``: a class to subclass or reuse, a spec builder, a converter."""
    _check_kind(kind)
    return default_host().registry.get(kind, name).obj


def list_components(kind: str, pattern: str = "*") -> list[str]:
    """Registered names of ``kind`` matching a shell-style ``pattern``, sorted."""
    _check_kind(kind)
    pattern = check_pattern(pattern)
    host = manifest.live_host()
    if host is not None:
        return host.registry.names(kind, pattern)
    return [n for n in manifest.current()["components"].get(kind, []) if fnmatch.fnmatchcase(n, pattern)]


def _check_kind(kind: str) -> None:
    if kind not in KIND_NAMES:
        raise UnknownComponentError("kind", kind, KIND_NAMES, f"kinds: {', '.join(KIND_NAMES)}")


def list_contested() -> list[dict[str, Any]]:
    """Names that several plugins registered: ``kind``, ``name``, ``settled`` and a
    ``text`` saying who claims it and how it was settled."""
    host = manifest.live_host()
    if host is None:
        return list(manifest.current()["contested"])
    return [{"kind": c.kind, "name": c.name, "text": str(c), "settled": c.chosen is not None}
            for c in host.registry.contests.values()]


def list_plugins() -> list[PluginRecord]:
    """Every plugin seen: name, distribution, version, status, hooks, what it provided."""
    host = manifest.live_host()
    if host is None:
        return [PluginRecord.from_dict(record) for record in manifest.current()["plugins"]]
    return list(host.records.values())


def model_info(name: str, *, flops: bool = True) -> dict[str, Any]:
    """Plugin, family, parameter counts, GFLOPs, input contract and description of ``name``.

    ``params`` counts every parameter the model is built with, auxiliary heads
    included (what it trains); ``params_inference`` leaves those heads out (what eval
    runs, and what ``aux_logits=False`` builds). All counts come from the model built
    on the meta device (no weights allocated), or from the manifest, without torch.
    ``flops=False`` leaves out ``gflops`` and ``gmacs``, whose counting pass costs more
    than the rest. ``gmacs`` is billions of multiply-adds, the figure torchvision's
    metadata (``_ops``) and timm's results tables quote; ``gflops`` is twice that.
    """
    check_name(name)
    host = manifest.live_host()
    if host is not None:
        live = live_model_info(name, flops=flops)
        if flops:
            manifest.remember("gflops", {name: live["gflops"]}, host)
        return live
    info = _from_manifest(manifest.current(), name, flops)
    if isinstance(info, Exception):
        raise info
    return info


def _from_manifest(content: dict[str, Any], name: str, flops: bool) -> dict[str, Any] | Exception:
    if name not in content["models"]:
        if name in content["unavailable"]:
            return SpecError(content["unavailable"][name])
        if any(c["kind"] == "model" and c["name"] == name and not c["settled"] for c in content["contested"]):
            return _contest_error(name)
        return UnknownModelError(name, content["models"])
    info: dict[str, Any] = {k: tuple(v) if k in TUPLE_FIELDS else v for k, v in content["models"][name].items()}
    data = info.get("data_config")
    if isinstance(data, dict):  # JSON has no tuples; the live answer has
        info["data_config"] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    if not flops:
        info.pop("gflops", None)
        info.pop("gmacs", None)
    elif "gflops" not in info:
        info["gflops"] = _counted_gflops([name])[name]
    return with_gmacs(info)


def with_gmacs(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` with ``gmacs`` (billions of multiply-adds, torchvision's ``_ops`` and timm's
    ``gmacs``) next to its ``gflops``, which counts each multiply-add as two operations."""
    if "gflops" in info:
        info["gmacs"] = info["gflops"] / 2
    return info


def _counted_gflops(names: list[str]) -> dict[str, float]:
    """Models' FLOPs, counted on first request (loading the plugins) and kept in the index."""
    counted = {name: _gflops(default_host(), name) for name in names}
    manifest.remember("gflops", counted)
    return counted


def _contest_error(name: str) -> Exception:
    """What ``create`` says of a contested model name (who claims it, how to choose),
    from the loaded plugins: the index keeps only a summary."""
    try:
        default_host().registry.get("model", name)
    except RegistryCoreError as exc:
        return exc
    return UnknownModelError(name)  # pragma: no cover - the index said contested, the plugins disagree


def live_model_info(name: str, *, flops: bool = True, counts: dict[str, Any] | None = None) -> dict[str, Any]:
    """``model_info`` from the loaded plugins. ``counts`` (parameter counts, auxiliary
    heads, perhaps FLOPs, as an earlier index recorded them) spare the model's build."""
    from ..model.data_config import DataConfig
    from .build import spec_from

    host = default_host()
    meta = spec_from(host, name, {}).meta
    provenance = host.registry.get("model", name).provenance
    if counts is None or not {"params", "params_inference", "aux_heads"} <= set(counts):
        model = _meta_model(host, name)
        counts = {"params": sum(p.numel() for p in model.parameters()),
                  "params_inference": sum(p.numel() for n, p in model.named_parameters() if not n.startswith("aux_heads.")),
                  "aux_heads": len(model.aux_heads)}
    info: dict[str, Any] = {
        "name": name,
        "family": meta.family,
        "plugin": provenance.plugin,
        "distribution": provenance.distribution,
        "version": provenance.version,
        "params": counts["params"],
        "params_inference": counts["params_inference"],
    }
    if flops:
        info["gflops"] = _gflops(host, name)
    elif "gflops" in counts:
        info["gflops"] = counts["gflops"]
    info.update(
        num_classes=meta.num_classes,
        input_size=meta.input_size,
        min_input_size=meta.min_input_size,
        mean=meta.mean,
        std=meta.std,
        interpolation=meta.interpolation,
        crop_pct=meta.crop_pct,
        aux_heads=counts["aux_heads"],
        description=meta.description,
        paper=meta.paper,
    )
    info.update(_tags_of(host, name, DataConfig.from_meta(meta)))
    return with_gmacs(info)


def _tags_of(host: PluginHost, name: str, architecture_data: DataConfig) -> dict[str, Any]:
    """The model's weight tags, its default tag, and that tag's data config (the
    architecture's own when it has none)."""
    registry = host.registry  # names() lists decided entries only: a contested tag is not among them
    tags = [registry.get("weights", tag_name).obj for tag_name in registry.names("weights", f"{name}.*")]
    default = next((t for t in tags if t.default), None)
    return {"tags": [t.tag for t in tags], "default_tag": default.tag if default else "",
            "data_config": (default.data if default else architecture_data).to_dict()}


@functools.cache
def _meta_model(host: PluginHost, name: str) -> ComposedModel:
    """``name`` built on the meta device, once per host (``host`` keys the cache)."""
    from ..model.compose import meta_device
    from .build import build_model

    with meta_device():
        return build_model(name)


@functools.cache
def _gflops(host: PluginHost, name: str) -> float:
    from ..model.flops import count_flops

    model = _meta_model(host, name)
    return count_flops(model, model.meta.input_size) / 1e9
