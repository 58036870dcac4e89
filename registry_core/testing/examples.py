"""Components with shape rules: checked at the constructions they declare, or inside
the registered models that use them, on the inputs those models give them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..errors import ConformanceError
from ..factory.create import create
from ..model.compose import meta_device
from ..plugins.host import default_host
from .components import (
    _check_backward,
    _check_deterministic_eval,
    _expect,
    _resolve,
    _spatial_ok,
    check_block,
    check_head,
    check_stem,
)

EXAMPLE_ATTRIBUTE = "conformance_examples"
"""The class attribute a component declares its example constructions in (see the module docstring)."""

_KIT: dict[str, Callable[..., Any]] = {"stem": check_stem, "block": check_block, "head": check_head}


def examples_of(component: type[nn.Module]) -> tuple[dict[str, Any], ...]:
    """The example constructions ``component`` declares in ``conformance_examples``: each
    a dict of the keyword arguments of ``check_stem``, ``check_block`` or ``check_head``
    (sizes and constructor options). ``()`` when it declares none."""
    examples = getattr(component, EXAMPLE_ATTRIBUTE, ())
    _expect(isinstance(examples, (tuple, list)) and all(isinstance(e, dict) and all(isinstance(k, str) for k in e)
                                                        for e in examples),
            f"{component.__name__}.{EXAMPLE_ATTRIBUTE} must be a tuple of dicts of keyword arguments, got {examples!r}")
    return tuple(examples)


def check_examples(kind: str, component: type[nn.Module] | str) -> int:
    """Run the kit's check for ``kind`` (stem, block or head) on each example
    construction ``component`` declares; returns how many ran."""
    cls = _resolve(kind, component)
    examples = examples_of(cls)
    for example in examples:
        try:
            _KIT[kind](cls, **example)
        except TypeError as exc:  # an example naming an argument neither the kit nor the constructor takes
            raise ConformanceError(f"{kind} {cls.__name__}: example {example} cannot be used: {exc}") from None
    return len(examples)


def check_in_model(kind: str, component: type[nn.Module] | str, model: str, *, size: int | None = None, batch: int = 2,
                   **create_kwargs: Any) -> int:
    """Check ``component`` where registered model ``model`` uses it, for a component
    with shape rules and no declared examples: build the model, run it in eval mode
    (at ``size``, by default its minimum input size or 32) to capture the input each
    instance of the class receives, then check each distinct instance on its own input:
    the channels (and for maps the stride or reduction) its attributes promise, logits
    of the model's classes from a head, gradients to every parameter in training, and
    deterministic eval. Returns how many instances were checked."""
    cls = _resolve(kind, component)
    torch.manual_seed(0)
    built = create(model, **create_kwargs)
    side = size or max(built.meta.min_input_size[-1], 32)
    captured: dict[tuple, tuple[nn.Module, torch.Tensor]] = {}

    def capture(module: nn.Module, args: tuple) -> None:
        x = args[0]
        key = (getattr(module, "in_channels", None), getattr(module, "out_channels", None), getattr(module, "stride", None),
               tuple(x.shape))
        captured.setdefault(key, (module, x.detach().clone()))

    hooks = [m.register_forward_pre_hook(capture) for m in built.modules() if type(m) is cls]
    _expect(bool(hooks), f"model {model!r} builds no {cls.__name__}")
    image = torch.randn(batch, built.meta.input_size[0], side, side)
    failure = None
    with torch.no_grad():
        try:
            built(image)  # in training, so auxiliary heads run too
            if not captured:
                built.eval()(image)
        except Exception as exc:  # an instance that broke its promise may be why: check those captured first
            failure = f"{type(exc).__name__}: {exc}"
    for hook in hooks:
        hook.remove()
    for module, x in captured.values():
        what = f"{kind} {cls.__name__} in model {model!r} (input {tuple(x.shape)})"
        module.train()
        y = module(x)
        _check_in_place(kind, module, x, y, what, built.num_classes, side)
        _check_backward(module, y, what)
        _check_deterministic_eval(module, x, what)
    _expect(failure is None, f"model {model!r} fails on a {side}x{side} input: {failure}")
    _expect(bool(captured), f"model {model!r} never calls its {cls.__name__}")
    return len(captured)


def _check_in_place(kind: str, module: Any, x: torch.Tensor, y: torch.Tensor, what: str, classes: int, side: int) -> None:
    """The shape promises a component makes to the model around it."""
    if kind == "head":
        _expect(tuple(y.shape) == (x.shape[0], classes), f"{what}: output {tuple(y.shape)}, expected {(x.shape[0], classes)}")
        return
    maps_out = y.dim() == 4 and getattr(module, "output_format", "NCHW") == "NCHW"
    channels = y.shape[1] if maps_out else y.shape[-1]
    _expect(channels == module.out_channels, f"{what}: output {tuple(y.shape)} has {channels} channels, "
                                             f"its out_channels is {module.out_channels}")
    if kind == "stem":
        if maps_out:
            _expect(all(_spatial_ok(side, s, module.reduction, True) for s in y.shape[2:]),
                    f"{what}: output size {tuple(y.shape[2:])} from {side} breaks reduction {module.reduction}")
        return
    if x.dim() == 4 and getattr(module, "input_format", "NCHW") == "NCHW":
        _expect(x.shape[1] == module.in_channels, f"{what}: given {x.shape[1]} channels, its in_channels is {module.in_channels}")
        if maps_out:
            _expect(all(_spatial_ok(a, b, module.stride, module.trims_border) for a, b in zip(x.shape[2:], y.shape[2:])),
                    f"{what}: output size {tuple(y.shape[2:])} from {tuple(x.shape[2:])} breaks stride {module.stride}")


def models_using(component: type[nn.Module], models: list[str] | None = None) -> list[str]:
    """Registered models (of ``models``, by default all) that build ``component`` (a
    stem, block or head class) with their default options, smallest first; models that
    cannot be built are left out."""
    return _users_by_class(default_host().registry.names("model") if models is None else models).get(component, [])


def _users_by_class(models: list[str]) -> dict[type, list[str]]:
    """Every class each of ``models`` builds, each built once on the meta device."""
    from ..factory.build import build_model

    users: dict[type, list[tuple[int, str]]] = {}
    for model in models:
        try:
            with meta_device():
                built = build_model(model)
        except Exception:  # an unavailable model: `plugins --check` reports it on its own
            continue
        params = sum(p.numel() for p in built.parameters())
        for cls in {type(m) for m in built.modules()}:
            users.setdefault(cls, []).append((params, model))
    return {cls: [model for _, model in sorted(found)] for cls, found in users.items()}


