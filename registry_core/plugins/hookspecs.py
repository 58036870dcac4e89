"""The plugin contract: every hook a plugin may implement.

Each hook receives one argument, ``register``, a callback bound to the calling plugin,
so that every entry is stamped with the plugin (distribution, version, entry point)
that gave it. A plugin hands over data through ``register`` and nothing else.

Names are global per kind. When two plugins register one name, neither gets it and
both keep everything else, in any load order: asking for it is a
``DuplicateNameError`` naming both, until the user picks one
(``REGISTRY_CORE_PREFER=name=distribution``). ``override=True`` beats plain
registrations; an override is shown by ``registry-core plugins``. A plugin that raises
inside a hook (or registers one name twice) is marked broken and contributes nothing;
the rest of the registry keeps working. Hooks run while plugins load: look other
plugins' components up later, when a model is built.

A stem, block or head may be registered as a function returning its class instead of
the class: the core calls it on first use, once every plugin has loaded, so the class
can subclass another plugin's (``registry_core.get_component``).

Hooks may gain keyword arguments in later versions (an implementation may accept only
the ones it uses), but never lose or rename one.

The callbacks' types: ``Register[T]`` is called as ``register(name, obj, *,
override=False)`` with ``obj`` a ``T``; ``RegisterConverter`` as ``register(converter,
*, override=False)``; ``RegisterWeights`` as ``register(tag, *, override=False)``; a ``DatasetLike`` has ``load(root, **options)``.
"""

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import pluggy

from ..model.interfaces import Block, Head, Stem
from ..model.spec import ModelSpec
from ..weights.keymaps import Converter
from ..weights.tags import WeightTag

PROJECT = "registry_core"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

T = TypeVar("T", contravariant=True)


class Register(Protocol[T]):
    """The ``register`` callback of the stem, block, head, model and dataset hooks."""

    def __call__(self, name: str, obj: T, /, *, override: bool = False) -> None: ...


class RegisterConverter(Protocol):
    """The ``register`` callback of ``register_converters``."""

    def __call__(self, converter: Converter, /, *, override: bool = False) -> None: ...


class RegisterWeights(Protocol):
    """The ``register`` callback of ``register_weights``."""

    def __call__(self, tag: WeightTag, /, *, override: bool = False) -> None: ...


class DatasetLike(Protocol):
    """What ``register_datasets`` hands over (a ``registry_core.DatasetFactory``)."""

    def load(self, root: str | None, **options: Any) -> tuple[Any, Any, list[str]]: ...


@hookspec
def register_stems(register: Register[type[Stem]]) -> None:
    """Contribute stems.

    Called once, when the registry first loads. Call ``register(name, cls, *,
    override=False)`` for each stem, where ``cls`` is a ``registry_core.Stem``
    subclass built as ``cls(in_chans, **options)``.
    """


@hookspec
def register_blocks(register: Register[type[Block]]) -> None:
    """Contribute blocks.

    Called once, when the registry first loads. Call ``register(name, cls, *,
    override=False)`` for each block, where ``cls`` is a ``registry_core.Block``
    subclass built as ``cls(in_channels, out_channels, stride=1, **options)``. A
    registered block can be put into any model with ``create(model, block=name)``.
    """


@hookspec
def register_heads(register: Register[type[Head]]) -> None:
    """Contribute heads.

    Called once, when the registry first loads. Call ``register(name, cls, *,
    override=False)`` for each head, where ``cls`` is a ``registry_core.Head``
    subclass built as ``cls(in_features, num_classes, **options)``.
    """


@hookspec
def register_models(register: Register[ModelSpec | Callable[..., ModelSpec]]) -> None:
    """Contribute models.

    Called once, when the registry first loads. Call ``register(name, spec, *,
    override=False)``, where ``spec`` is a ``registry_core.ModelSpec`` or a function
    returning one. The function's keyword parameters are the options users may
    override at ``create(name, **options)``; any other option is rejected with a
    ``ValueError`` naming it.
    """


@hookspec
def register_converters(register: RegisterConverter) -> None:
    """Contribute weight converters.

    Called once, when the registry first loads. Call ``register(converter, *,
    override=False)`` with a ``registry_core.Converter``: pure functions mapping a
    state dict between another library's layout (``converter.source``, such as
    ``"torchvision"`` or ``"timm"``) and ours for one model. Converters do no I/O;
    the core reads, writes and verifies. The registry key is ``source/model``.
    """


@hookspec
def register_weights(register: RegisterWeights) -> None:
    """Contribute weight tags: sets of pretrained weights for registered models.

    Called once, when the registry first loads. Call ``register(tag, *,
    override=False)`` with a ``registry_core.WeightTag`` named ``model.tag`` (timm's
    grammar, e.g. ``resnet50.tv2_in1k``): its data config, label set, metrics,
    license and the ``WeightSource`` records saying where torchvision or timm publish
    the file. A tag marked ``default=True`` is what ``create(model, pretrained=True)``
    loads. The weights are converted from a source's local cache with the registered
    converter ``source.library/model``; nothing is downloaded. See ``docs/weights.md``.
    """


@hookspec
def register_datasets(register: Register[DatasetLike]) -> None:
    """Contribute datasets for the trainer.

    Called once, when the registry first loads. Call ``register(name, factory, *,
    override=False)``, where ``factory`` is a ``registry_core.DatasetFactory``
    whose ``load(root, **options)`` returns ``(train, val, classes)``: two map-style
    torch Datasets of ``(C x H x W image tensor, int label)`` and the class names.
    ``root`` is the user's ``--data-root`` or ``None``; nothing may be downloaded.
    See ``docs/training.md``.
    """
