"""Counting a model's floating-point operations, on whatever device it lives on."""

from __future__ import annotations

import torch


def count_flops(model: torch.nn.Module, input_size: tuple[int, int, int]) -> int:
    """Floating-point operations (a multiply-add counts 2) of one eval forward pass."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, *input_size, device=device))
    model.train(was_training)
    return counter.get_total_flops()
