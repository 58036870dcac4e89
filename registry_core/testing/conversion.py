"""A registered converter proved on another library's model: equal outputs, and back again."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ConformanceError, ConversionError
from ..factory.catalog import get_converter
from ..factory.conversion import max_output_difference
from ..factory.create import create
from .components import _expect


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


