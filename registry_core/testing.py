"""A conformance kit: checks any stem, block, head or registered model keeps the contract.

Plugin authors call these from their own tests::

    from registry_core import testing
    testing.check_block(MyBlock, in_channels=64, out_channels=128, stride=2)
    testing.check_model("my_model")

Each check raises ``ConformanceError`` (an ``AssertionError``) saying what failed.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .errors import ConformanceError, ConversionError
from .factory.catalog import get_converter
from .factory.conversion import max_output_difference
from .factory.create import create
from .model.compose import classification_loss, main_logits
from .model.interfaces import Block, Head, Stem
from .plugins.host import default_host


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


def _spatial_ok(size_in: int, size_out: int, stride: int, trims: bool) -> bool:
    if trims:
        return 1 <= size_out <= math.ceil(size_in / stride)
    return size_out in (size_in // stride, math.ceil(size_in / stride))


def check_stem(stem: type[Stem] | str, *, in_chans: int = 3, size: int = 64, batch: int = 2, **options: Any) -> Stem:
    """A stem builds from ``in_chans``, produces ``out_channels`` and shrinks by ``reduction``."""
    cls = _resolve("stem", stem)
    module = cls(in_chans, **options)
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
    module = cls(in_channels, out_channels, stride, **options)
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
    module = cls(in_features, num_classes, **options)
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


def perturb_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial affine parameters and running statistics, so a
    conversion that mixes up BN tensors cannot pass a parity check by accident."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                if module.affine and module.weight is not None and module.bias is not None:
                    module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                    module.bias.copy_(torch.randn(n, generator=generator) * 0.1)
                if module.running_mean is not None and module.running_var is not None:
                    module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                    module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
    return model


def check_conversion(
    source: str,
    model: str,
    source_model: nn.Module,
    *,
    size: int = 64,
    batch: int = 2,
    atol: float = 1e-5,
    seed: int = 0,
    **create_kwargs: Any,
) -> float:
    """Prove the registered ``source/model`` converter: ``source_model``'s state dict,
    converted, loads strictly into ``create(model)`` and gives the same eval outputs
    (max abs difference <= ``atol``), and converting back gives equal tensors under the
    same keys. Returns the max abs difference."""
    converter = get_converter(source, model)
    original = {k: v.detach().clone() for k, v in source_model.state_dict().items()}
    ours = create(model, **{**converter.create_kwargs, **create_kwargs})
    ours.load_state_dict(converter.to_ours(dict(original)), strict=True)
    try:
        diff = max_output_difference(source_model, ours, size, batch=batch, seed=seed)
    except ConversionError as exc:
        raise ConformanceError(f"{source}/{model}: {exc}") from None
    _expect(diff <= atol, f"{source}/{model}: outputs differ by {diff:.3g} (allowed {atol:g})")
    back = converter.from_ours(ours.state_dict())
    _expect(set(back) == set(original), f"{source}/{model}: converting back changes the keys: {sorted(set(back) ^ set(original))[:5]}")
    unequal = [k for k in original if not torch.equal(back[k], original[k])]
    _expect(not unequal, f"{source}/{model}: converting back changes {', '.join(unequal[:5])}")
    return diff
