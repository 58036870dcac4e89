"""Counting a model's floating-point operations, on whatever device it lives on."""

from __future__ import annotations

import math
from typing import Any

import torch


def count_flops(model: torch.nn.Module, input_size: tuple[int, int, int]) -> int:
    """Floating-point operations (a multiply-add counts 2) of one eval forward pass.

    Convolutions, linear layers and matrix products count, attention's included:
    ``scaled_dot_product_attention`` counts its two products (queries by keys, weights by
    values) whichever kernel runs it. torch's counter knows the GPU kernels and, on the
    meta device, sees the products themselves; the CPU's fused kernel is added here.
    """
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False, custom_mapping=_attention_kernels())
    with counter, torch.no_grad():
        model(torch.zeros(1, *input_size, device=device))
    model.train(was_training)
    return counter.get_total_flops()


def attention_flops(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, **kwargs: Any) -> int:
    """The products of attention over ``(..., L, E)`` queries, ``(..., S, E)`` keys and
    ``(..., S, Ev)`` values: ``L x S`` scores of ``E`` multiply-adds, then ``L x Ev``
    outputs of ``S``; the softmax and scaling are not counted, as torch's counter does."""
    *batch, length, embed = query_shape
    source = key_shape[-2]
    return 2 * math.prod(batch) * length * source * (embed + value_shape[-1])


def _attention_kernels() -> dict[Any, Any]:
    aten = torch.ops.aten
    kernel = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return {} if kernel is None else {kernel: attention_flops}
