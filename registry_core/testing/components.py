"""The kit's checks of a stem, block or head class and of a registered model."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..errors import ConformanceError
from ..factory.create import create
from ..model.compose import classification_loss, main_logits
from ..model.init import initialise
from ..model.interfaces import Block, Head, Stem
from ..plugins.host import default_host


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ConformanceError(message)


def _resolve(kind: str, component: Any) -> Any:
    if isinstance(component, str):
        return default_host().registry.get(kind, component).obj
    return component


def _check_backward(module: nn.Module, output: torch.Tensor, what: str) -> None:
    if not any(p.requires_grad for p in module.parameters()):
        return  # a parameter-free component (a pooling block) has nothing to train
    _expect(output.requires_grad, f"{what}: output does not depend on its parameters")
    output.float().square().mean().backward()
    missing = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None]
    _expect(not missing, f"{what}: no gradient reached {', '.join(missing[:5])}")
    bad = [n for n, p in module.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    _expect(not bad, f"{what}: non-finite gradients in {', '.join(bad[:5])}")


def _check_deterministic_eval(module: nn.Module, x: torch.Tensor, what: str) -> torch.Tensor:
    module.eval()
    with torch.no_grad():
        first, second = module(x), module(x)
    _expect(torch.equal(first, second), f"{what}: two eval passes on the same input differ")
    return first


def _built_and_initialised(cls: Any, args: tuple, options: dict[str, Any], what: str) -> Any:
    """Build the component twice under one seed, as the core does (constructor, then
    ``init_weights()`` or the default initialisation), and check the initialisation
    contract: finite, reproducible under the seed, and, for the default, He fan-out."""
    built = []
    for _ in range(2):
        torch.manual_seed(0)
        module = cls(*args, **options)
        initialise(module)
        built.append(module)
    first, second = (dict(m.named_parameters()) for m in built)
    bad = [n for n, p in first.items() if not torch.isfinite(p).all()]
    _expect(not bad, f"{what}: non-finite parameters after initialisation: {', '.join(bad[:5])}")
    differ = [n for n in first if not torch.equal(first[n], second[n])]
    _expect(not differ, f"{what}: initialisation is not reproducible under torch.manual_seed: {', '.join(differ[:5])}")
    if not callable(getattr(built[0], "init_weights", None)):
        for name, layer in built[0].named_modules():
            if isinstance(layer, nn.modules.conv._ConvNd) and layer.weight.numel() >= 4096:
                fan_out = layer.weight.shape[0] * layer.weight[0, 0].numel()
                expected = math.sqrt(2.0 / fan_out)
                std = layer.weight.std().item()
                _expect(abs(std - expected) <= 0.2 * expected,
                        f"{what}: {name} has std {std:.3g} after the default initialisation, expected {expected:.3g}")
    return built[0]


def _spatial_ok(size_in: int, size_out: int, stride: int, trims: bool) -> bool:
    if trims:
        return 1 <= size_out <= math.ceil(size_in / stride)
    return size_out in (size_in // stride, math.ceil(size_in / stride))


def check_stem(stem: type[Stem] | str, *, in_chans: int = 3, size: int = 64, batch: int = 2, **options: Any) -> Stem:
    """A stem builds from ``in_chans``, produces ``out_channels`` and shrinks by ``reduction``."""
    cls = _resolve("stem", stem)
    module = _built_and_initialised(cls, (in_chans,), options, f"stem {cls.__name__}")
    what = f"stem {cls.__name__}"
    _expect(isinstance(module, Stem), f"{what} is not a registry_core.Stem")
    module.train()
    y = module(torch.randn(batch, in_chans, size, size))
    _expect(y.shape[:2] == (batch, module.out_channels), f"{what}: output {tuple(y.shape)}, expected {module.out_channels} channels")
    _expect(
        all(abs(s - size / module.reduction) <= max(2, 0.1 * size / module.reduction) for s in y.shape[2:]),
        f"{what}: output size {tuple(y.shape[2:])} does not match reduction {module.reduction} of {size}",
    )
    _check_backward(module, y, what)
    _check_deterministic_eval(module, torch.randn(batch, in_chans, size, size), what)
    return module


def check_block(
    block: type[Block] | str,
    *,
    in_channels: int = 16,
    out_channels: int = 32,
    stride: int = 1,
    size: int = 16,
    batch: int = 2,
    **options: Any,
) -> Block:
    """A block maps ``N x in x H x W`` to ``N x out x H/stride x W/stride`` and trains."""
    cls = _resolve("block", block)
    module = _built_and_initialised(cls, (in_channels, out_channels, stride), options, f"block {cls.__name__}")
    what = f"block {cls.__name__}({in_channels}, {out_channels}, stride={stride})"
    _expect(isinstance(module, Block), f"{what} is not a registry_core.Block")
    _expect(
        (module.in_channels, module.out_channels, module.stride) == (in_channels, out_channels, stride),
        f"{what}: in_channels/out_channels/stride attributes do not match the constructor arguments",
    )
    module.train()
    y = module(torch.randn(batch, in_channels, size, size))
    _expect(y.shape[:2] == (batch, out_channels), f"{what}: output {tuple(y.shape)}, expected {out_channels} channels")
    _expect(
        all(_spatial_ok(size, s, stride, cls.trims_border) for s in y.shape[2:]),
        f"{what}: output size {tuple(y.shape[2:])} from {size}x{size} breaks the stride contract",
    )
    _check_backward(module, y, what)
    _check_deterministic_eval(module, torch.randn(batch, in_channels, size, size), what)
    return module


def check_head(head: type[Head] | str, *, in_features: int = 32, num_classes: int = 7, size: int = 7, batch: int = 2, **options: Any) -> Head:
    """A head gives ``N x num_classes`` logits and ``reset`` changes the class count."""
    cls = _resolve("head", head)
    module = _built_and_initialised(cls, (in_features, num_classes), options, f"head {cls.__name__}")
    what = f"head {cls.__name__}"
    _expect(isinstance(module, Head), f"{what} is not a registry_core.Head")
    x = torch.randn(batch, in_features, size, size)
    module.train()
    y = module(x)
    _expect(tuple(y.shape) == (batch, num_classes), f"{what}: output {tuple(y.shape)}, expected {(batch, num_classes)}")
    _check_backward(module, y, what)
    module.reset(num_classes + 3)
    _expect(module.num_classes == num_classes + 3, f"{what}: reset() did not update num_classes")
    _expect(module(x).shape[1] == num_classes + 3, f"{what}: reset() did not change the number of logits")
    module.reset(0)
    _expect(module(x).dim() == 2, f"{what}: with 0 classes the head must return pooled features (N x F)")
    return module


def check_model(name: str, *, size: int | None = None, batch: int = 2, **create_kwargs: Any) -> None:
    """Build ``name`` and check forward, backward, eval determinism, head reset,
    ``in_chans=1`` and ``features_only`` against ``feature_info``. ``size`` defaults to
    the model's minimum input size, which keeps heavy models cheap."""
    torch.manual_seed(0)
    model = create(name, **create_kwargs)
    meta = model.meta
    size = size or meta.min_input_size[-1]
    chans = meta.input_size[0]
    x = torch.randn(batch, chans, size, size)
    what = f"model {name!r}"

    model.train()
    logits = main_logits(model(x))
    _expect(tuple(logits.shape) == (batch, model.num_classes), f"{what}: logits {tuple(logits.shape)}")
    classification_loss(model(x), torch.zeros(batch, dtype=torch.long)).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    _expect(not missing, f"{what}: no gradient reached {', '.join(missing[:5])}")

    out = _check_deterministic_eval(model, x, what)
    _expect(tuple(out.shape) == (batch, model.num_classes), f"{what}: eval logits {tuple(out.shape)}")
    model.reset_classifier(5)
    with torch.no_grad():
        _expect(model(x).shape == (batch, 5), f"{what}: reset_classifier(5) did not give 5 logits")

    gray = create(name, in_chans=1, num_classes=3, **create_kwargs).eval()
    with torch.no_grad():
        _expect(gray(torch.randn(1, 1, size, size)).shape == (1, 3), f"{what}: in_chans=1, num_classes=3 failed")

    features = create(name, features_only=True, **create_kwargs).eval()
    with torch.no_grad():
        maps = features(x)
    _expect(len(maps) == len(features.feature_info), f"{what}: features_only gave {len(maps)} maps for {len(features.feature_info)} stages")
    for fmap, info in zip(maps, features.feature_info):
        _expect(fmap.shape[1] == info["channels"], f"{what}: {info['module']} has {fmap.shape[1]} channels, feature_info says {info['channels']}")


