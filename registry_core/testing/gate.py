"""The conformance gate: the kit run on everything one plugin registered
(``registry-core plugins --check NAME``), and every registered model built once."""

from __future__ import annotations

from ..errors import ConformanceError, RegistryCoreError
from ..factory.catalog import get_converter
from ..factory.create import create
from ..model.compose import meta_device
from ..plugins.host import default_host
from .components import _expect, _resolve, check_block, check_head, check_model, check_stem
from .conversion import check_conversion, perturb_batchnorm
from .examples import _KIT, EXAMPLE_ATTRIBUTE, _users_by_class, check_examples, check_in_model


class _Users:
    """Which models use a class: the checked plugin's own models first, every registered
    model only for a class none of them uses; each set is built once per gate run."""

    def __init__(self, own: list[str]):
        self.own = own
        self.found: list[dict[type, list[str]]] = []

    def of(self, cls: type) -> list[str]:
        if not self.found:
            self.found.append(_users_by_class(self.own))
        if cls not in self.found[0] and len(self.found) == 1:
            self.found.append(_users_by_class(default_host().registry.names("model")))
        return next((found[cls] for found in self.found if cls in found), [])


def check_plugin(plugin: str) -> list[tuple[str, str]]:
    """Run the kit on everything the loaded plugin ``plugin`` (its entry-point or
    distribution name) provides: every stem, block and head (at its declared
    ``conformance_examples``, else inside the smallest registered model that uses it,
    else at the kit's default shape), every model, every converter whose source library
    is installed, and every weight tag's model and converters. Returns ``(what,
    outcome)`` pairs, outcome ``"ok"`` (with how it was checked), ``"skipped: why"`` or
    ``"FAILED: why"``; never raises for a failed check, so one bad component does not
    hide the others."""
    wanted = plugin.lower().replace("_", "-")
    records = [r for r in default_host().records.values()
               if wanted in {r.name.lower().replace("_", "-"), r.distribution.lower().replace("_", "-")}]
    if not records:
        raise ConformanceError(f"no loaded plugin is called {plugin!r}")
    results = []
    users = _Users([model for r in records for model in r.provided.get("model", [])])
    for record in records:
        if record.status != "ok":
            results.append((f"plugin {record.name}", f"FAILED: {record.status}: {record.error}"))
        for kind, names in record.provided.items():
            for name in names:
                results.append((f"{kind} {name}", _run_check(kind, name, users)))
    return results


def unavailable_models() -> dict[str, str]:
    """Every registered model that cannot be built, and why: its spec names a stem,
    block or head that nobody provides (or two plugins contest, or a broken plugin
    provided), or its parts do not fit. Each is built once on the meta device. A model
    whose own builder raised is left out: its plugin's record reports it."""
    from ..factory.catalog import live_model_info

    host = default_host()
    problems = {}
    for name in host.registry.names("model"):
        try:
            live_model_info(name, flops=False)
        except Exception as exc:  # report every kind of failure, model by model
            if ("model", name) not in host.registry.broken_names:
                problems[name] = str(exc) if isinstance(exc, RegistryCoreError) else f"{type(exc).__name__}: {exc}"
    return problems


def _run_check(kind: str, name: str, users: _Users) -> str:
    try:
        if kind in _KIT:
            return _check_component(kind, name, users)
        if kind == "model":
            check_model(name)
        elif kind == "converter":
            return _check_converter(name)
        elif kind == "weights":
            return _check_weight_tag(name)
        else:
            return f"skipped: no conformance check for {kind}s"
    except Exception as exc:  # report every failure, of any kind, and go on
        return f"FAILED: {type(exc).__name__}: {exc}"
    return "ok"


def _check_component(kind: str, name: str, users: _Users) -> str:
    import inspect

    cls = _resolve(kind, name)
    count = check_examples(kind, cls)
    if count:
        return f"ok ({count} declared example{'s' if count > 1 else ''})"
    if users.of(cls):
        model = users.of(cls)[0]
        checked = check_in_model(kind, cls, model)
        return f"ok (inside model {model}, {checked} instance{'s' if checked > 1 else ''})"
    fixed = {"stem": 1, "block": 3, "head": 2}[kind]
    required = [p.name for p in list(inspect.signature(cls).parameters.values())[fixed:]
                if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    if required:
        return (f"skipped: needs options ({', '.join(required)}) and no registered model uses it; "
                f"declare {EXAMPLE_ATTRIBUTE}")
    try:
        {"stem": lambda: check_stem(cls, size=128), "block": lambda: check_block(cls), "head": lambda: check_head(cls)}[kind]()
    except Exception as exc:
        raise ConformanceError(f"{exc} (at the kit's default shape: a {kind} with shape rules declares "
                               f"{EXAMPLE_ATTRIBUTE})") from None
    return "ok (default shape)"


def _check_converter(name: str) -> str:
    import importlib.util

    from ..factory.conversion import source_model

    converter = get_converter(*name.split("/", 1))
    if importlib.util.find_spec(converter.source) is None:
        return f"skipped: {converter.source} is not installed"
    with meta_device():  # only the smallest input is wanted: nothing allocated
        size = create(converter.model, **converter.create_kwargs).meta.min_input_size[-1]
    check_conversion(converter.source, converter.model, perturb_batchnorm(source_model(converter)),
                     size=max(size, 64), atol=1e-4)
    return "ok"


def _check_weight_tag(name: str) -> str:
    """A tag names a registered model, and a converter for each library it comes from."""
    registry = default_host().registry
    tag = registry.get("weights", name).obj
    registry.get("model", tag.model)
    missing = [f"{s.library}/{tag.model}" for s in tag.sources if f"{s.library}/{tag.model}" not in registry.entries["converter"]]
    _expect(not missing, f"no converter {', '.join(missing)} for its source files")
    _expect(bool(tag.sources), "it names no source of its weights")
    return "ok"
