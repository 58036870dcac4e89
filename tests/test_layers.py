"""The core's layers run one way (house rule 10): a module imports only from its own
layer or the ones below it, at module level or inside a function, and the core never
imports a plugin. ``create`` with weights builds once and is entered once."""

import ast
import sys
import warnings
from pathlib import Path

import pytest

import registry_core

CORE = Path(registry_core.__file__).resolve().parent

# Bottom to top; a module belongs to the layer of its longest matching prefix.
LAYERS = [
    ("base", ("registry_core._version", "registry_core.errors", "registry_core.files", "registry_core.text",
              "registry_core.arguments")),
    ("model", ("registry_core.model",)),
    ("weights", ("registry_core.weights",)),
    ("plugins", ("registry_core.plugins",)),
    ("factory", ("registry_core.factory",)),
    ("training and tools", ("registry_core.training", "registry_core.testing", "registry_core.scaffold")),
    ("inference", ("registry_core.inference",)),
    ("cli", ("registry_core.cli",)),
    ("public API", ("registry_core",)),
]


def layer_of(module: str) -> int:
    matches = [(len(prefix), i) for i, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} is in no layer; add it to LAYERS"
    return max(matches)[1]


def module_name(path: Path) -> str:
    parts = ["registry_core", *path.relative_to(CORE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool) -> list[str]:
    """Every module ``source`` imports, anywhere in it, with relative imports resolved."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.append(target)
            found += [f"{target}.{alias.name}" for alias in node.names]
    return found


def upward_imports(source: str, module: str, is_package: bool = False) -> list[str]:
    here = layer_of(module)
    problems = []
    for target in imported_modules(source, module, is_package):
        top = target.split(".")[0]
        if top.startswith("registry_") and top != "registry_core":
            problems.append(f"{module} imports the plugin module {target}")
        elif top == "registry_core" and target.count(".") and _is_module(target) and layer_of(target) > here:
            problems.append(f"{module} ({LAYERS[here][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
    return problems


def _is_module(dotted: str) -> bool:
    path = CORE.joinpath(*dotted.split(".")[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_every_core_module_imports_only_downward():
    problems = []
    for path in core_modules():
        problems += upward_imports(path.read_text(), module_name(path), path.name == "__init__.py")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("source", [
    "def f():\n    from ..factory.create import create\n",
    "from registry_core.training import train\n",
    "import registry_resnet\n",
])
def test_the_direction_check_catches_upward_and_plugin_imports(source):
    assert upward_imports(source, "registry_core.weights.assign")


def test_the_direction_check_allows_downward_imports():
    assert upward_imports("from ..model.compose import meta_device\nfrom ..errors import WeightsError\n",
                          "registry_core.weights.assign") == []


def test_every_module_is_in_a_layer_and_stays_small():
    too_long = [f"{path.relative_to(CORE)}: {n} lines" for path in core_modules()
                if (n := len(path.read_text().splitlines())) > 400]
    for path in core_modules():
        layer_of(module_name(path))
    assert not too_long


def _calls_of(function, action) -> int:
    code, calls = function.__code__, 0

    def profile(frame, event, arg):
        nonlocal calls
        if event == "call" and frame.f_code is code:
            calls += 1

    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
    return calls


@pytest.mark.parametrize("requested", [{}, {"num_classes": 3}, {"in_chans": 3}, {"features_only": True}])
def test_create_with_weights_enters_create_once_and_builds_once(tmp_path, requested):
    from registry_core.factory import build, create

    path = tmp_path / "lenet5.safetensors"
    registry_core.save(registry_core.create("lenet5"), path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a reset head is reported; not the point here
        assert _calls_of(create.create, lambda: registry_core.create("lenet5", weights=path, **requested)) == 1
        assert _calls_of(build.build_model, lambda: registry_core.create("lenet5", weights=path, **requested)) == 1
        assert _calls_of(create.create, lambda: registry_core.load(path)) == 0


def test_a_model_records_its_plugin_when_built_so_save_needs_no_registry(tmp_path, monkeypatch):
    from registry_core.plugins import host

    model = registry_core.create("lenet5")
    assert (model.provenance.distribution, model.provenance.plugin) == ("registry-lenet", "lenet")
    monkeypatch.setattr(host, "default_host", lambda: pytest.fail("save() looked the model up in the registry"))
    header = registry_core.read_metadata(registry_core.save(model, tmp_path / "m.safetensors"))
    assert header["plugin"] == "registry-lenet"


def test_old_module_path_and_dict_records_still_work_with_a_deprecation_warning():
    import importlib

    sys.modules.pop("registry_core.convert", None)
    with pytest.warns(DeprecationWarning, match="registry_core.convert_from"):
        old = importlib.import_module("registry_core.convert")
    assert old.convert_from is registry_core.convert_from
    record = next(r for r in registry_core.list_plugins() if r.name == "lenet")
    with pytest.warns(DeprecationWarning, match="record.name"):
        assert record["distribution"] == record.distribution == "registry-lenet"
    with pytest.raises(KeyError), pytest.warns(DeprecationWarning):
        record["no_such_field"]
