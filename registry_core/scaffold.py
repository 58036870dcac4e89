"""A ready-to-install block plugin skeleton: what ``registry-core new-plugin NAME`` writes.

The skeleton is the smallest third-party plugin there is (see ``docs/plugins.md``): a
``pyproject.toml`` advertising one entry point in the ``registry_core`` group, one module
with a ``Block`` subclass and the hook that registers it, and a test that runs the
conformance kit on the installed block. It passes its own test as generated, so an
author starts from something that works and changes the block; the test fails (it never
skips) when the plugin is missing, broken or left out by ``REGISTRY_CORE_PLUGINS``.
"""

from __future__ import annotations

import importlib.util
import keyword
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from string import Template

from ._version import __version__
from .errors import ScaffoldError
from .files import atomic_write

# A distribution name (PEP 508: ASCII letters and digits, with '-', '_' or '.' inside).
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
# Names the generated module already binds, which the block's class must not shadow.
_TAKEN = {"Block", "Tensor", "nn", "hookimpl", "register_blocks"}

PYPROJECT = Template('''\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "$distribution"
version = "0.1.0"
description = "The $block block for registry-core."
requires-python = ">=3.10"
dependencies = ["registry-core>=$core_version"]

[project.optional-dependencies]
test = ["pytest>=7"]

[project.entry-points.registry_core]
$block = "$package"

[tool.setuptools]
packages = ["$package"]
''')

MODULE = Template('''\
"""The $block block for registry-core.

Installed, ``registry_core.create("resnet18", block="$block")`` builds ResNet-18 with this
block in every stage (any model works), and ``registry-core plugins`` lists this package.
"""

from torch import Tensor, nn

from registry_core import Block, hookimpl


class $cls(Block):
    """Two 3x3 conv-BN layers and a shortcut: replace the body with your idea."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__(in_channels, out_channels, stride)
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x) + self.shortcut(x))


@hookimpl
def register_blocks(register):
    register("$block", $cls)
''')

TEST = Template('''\
"""$distribution checked with registry-core's conformance kit (run ``pytest`` once installed)."""

import pytest

from registry_core import list_models, list_plugins, testing


def test_the_plugin_is_installed_and_loaded():
    record = {r.name: r for r in list_plugins()}.get("$block")
    assert record is not None, "$distribution is not installed: pip install -e . in the folder of its pyproject.toml"
    assert record.status == "ok", f"$distribution is {record.status}: {record.error}"


@pytest.mark.parametrize("stride", [1, 2])
def test_block_keeps_the_contract(stride):
    testing.check_block("$block", in_channels=16, out_channels=32, stride=stride)


@pytest.mark.skipif("resnet18" not in list_models(), reason="install registry-resnet to try the block in ResNet-18")
def test_block_works_in_resnet18():
    testing.check_model("resnet18", block="$block")
''')

README = Template('''\
# $distribution

The `$block` block for [registry-core](https://pypi.org/project/registry-core/).

    pip install -e .          # registry-core plugins now lists $distribution
    pip install -e '.[test]'  # pytest
    pytest tests              # in this folder

The tests run registry-core's conformance kit on the installed block. They fail, never
skip, when the plugin is not installed, is broken, or is left out by
`REGISTRY_CORE_PLUGINS` (`registry-core plugins` says which); only the ResNet-18 test
is skipped, without `registry-resnet`.

Then `registry_core.create("resnet18", block="$block")` builds ResNet-18 with it.
''')


@dataclass(frozen=True)
class PluginNames:
    """The names a skeleton uses, all derived from its distribution name."""

    distribution: str
    package: str
    block: str
    cls: str

    @classmethod
    def from_name(cls, name: str) -> PluginNames:
        """``registry-cool-block`` -> package ``registry_cool_block``, block
        ``cool_block``, class ``CoolBlock``; a ``ScaffoldError`` says what is wrong.
        Every name derived is a valid Python identifier, and the block is not one a
        plugin already registers."""
        if not name.isascii():
            raise ScaffoldError(f"{name!r} is not a usable plugin name: distribution names are ASCII only "
                                "(letters, digits, '-', '_', '.'), e.g. registry-my-block")
        if not _NAME.match(name):
            raise ScaffoldError(
                f"{name!r} is not a usable plugin name: use letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit (e.g. registry-my-block)"
            )
        package = re.sub(r"[-_.]+", "_", name).lower()
        if package[0].isdigit():
            raise ScaffoldError(f"{name!r} cannot be a plugin name: its package {package!r} would start with a digit, "
                                f"which Python cannot import; put a word first, e.g. registry-{name}")
        if keyword.iskeyword(package) or package == "registry_core":
            raise ScaffoldError(f"{name!r} cannot be a plugin name: its package would be {package!r}")
        if package in sys.stdlib_module_names or importlib.util.find_spec(package) is not None:
            raise ScaffoldError(f"{name!r} cannot be a plugin name: a module named {package!r} is already importable")
        block = package.removeprefix("registry_") or package
        _refuse_taken_block(name, block)
        return cls(name, package, block, _class_name(block))


def _class_name(block: str) -> str:
    """CamelCase of the block name, made a fresh identifier: ``2fast`` -> ``Block2Fast``,
    ``tensor`` -> ``TensorBlock`` (``Tensor`` is imported by the module)."""
    camel = "".join(part.title() for part in block.split("_"))
    return next(c for c in (camel, f"{camel}Block", f"Block{camel}") if c.isidentifier() and c not in _TAKEN)


def _refuse_taken_block(name: str, block: str) -> None:
    """The block name is the plugin's entry-point name and its registered name: a second
    plugin with either would be contested or skipped, so refuse it now."""
    from .plugins.host import default_host

    host = default_host()
    if block in host.registry.names("block"):
        provenance = host.registry.get("block", block).provenance
        raise ScaffoldError(f"{name!r} cannot be a plugin name: its block {block!r} is already registered by "
                            f"{provenance.distribution or provenance.plugin}; choose another name")
    owner = host.records.get(block)
    if owner is not None:
        raise ScaffoldError(f"{name!r} cannot be a plugin name: the plugin name {block!r} is taken by "
                            f"{owner.distribution or owner.name}; choose another name")


def render(names: PluginNames) -> dict[str, str]:
    """The skeleton's files: relative path -> text."""
    values = {**vars(names), "core_version": __version__}
    return {
        "pyproject.toml": PYPROJECT.substitute(values),
        "README.md": README.substitute(values),
        f"{names.package}/__init__.py": MODULE.substitute(values),
        f"tests/test_{names.package}.py": TEST.substitute(values),
    }


def write_plugin(name: str, directory: str | Path | None = None) -> Path:
    """Write the skeleton for distribution ``name`` into ``directory`` (default
    ``./name``), which must not exist or be empty. Returns the folder."""
    names = PluginNames.from_name(name)
    root = Path(directory if directory is not None else name)
    try:
        occupied = root.exists() and (not root.is_dir() or any(root.iterdir()))
    except OSError as exc:
        raise ScaffoldError(f"cannot write the plugin into {root}: {exc.strerror or exc}") from None
    if occupied:
        raise ScaffoldError(f"{root} already exists and is not an empty folder; choose another with --dir")
    for relative, text in render(names).items():
        with atomic_write(root / relative, mode="w") as handle:
            handle.write(text)
    return root
