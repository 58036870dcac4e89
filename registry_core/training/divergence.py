"""Telling a diverging run from a training one, and saying what to change.

A run has diverged when its training loss is not finite (checked after every step), when
a validation loss is not finite, or when an epoch's mean training loss is more than
``FACTOR`` times the larger of the first epoch's and the loss of a uniform guess,
``ln(classes)``: a model that learns never gets there, and one that does is confidently
wrong. Weights are checked before every checkpoint, so no file the trainer writes holds
NaN or inf.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import DivergenceError

FACTOR = 4.0


class DivergenceWatch:
    def __init__(self, num_classes: int, lr: float, head_lr_mult: float, first_epoch_loss: float | None = None):
        self.chance = math.log(max(num_classes, 2))
        self.lr, self.head_lr_mult, self.first = lr, head_lr_mult, first_epoch_loss

    def check_finite(self, loss: float, what: str, where: str) -> None:
        """``loss``: a step's training loss, or a validation loss (only its finiteness counts)."""
        if not math.isfinite(loss):
            self.fail(f"{where}: {what} became {loss}")

    def check_epoch(self, mean_loss: float, where: str) -> None:
        """``mean_loss``: an epoch's mean training loss; the first one sets the reference."""
        limit = FACTOR * max(self.first or 0.0, self.chance)
        if not math.isfinite(mean_loss) or mean_loss > limit:
            reference = f"the first epoch's {self.first:.4g}" if self.first else f"ln(classes) = {self.chance:.3g}"
            self.fail(f"{where}: the mean training loss is {mean_loss:.4g}, more than {FACTOR:g}x {reference}")
        if self.first is None:
            self.first = mean_loss

    def check_weights(self, model: nn.Module, where: str) -> None:
        tensors = [t for t in model.state_dict().values() if t.is_floating_point()]
        if tensors and not bool(torch.stack([t.isfinite().all() for t in tensors]).all()):
            self.fail(f"{where}: the weights hold NaN or infinite values")

    def fail(self, what: str) -> None:
        cause = (f"the likely cause is the learning rate (peak {self.lr:g}, --lr): lower it, or add --clip-grad "
                 "or a longer --warmup-epochs")
        if self.head_lr_mult != 1:
            cause += (f"; the head trains {self.head_lr_mult:g}x faster (--head-lr-mult {self.head_lr_mult:g}), "
                      "which a freshly initialised head often cannot take: try 1")
        raise DivergenceError(f"training diverged at {what}; {cause}")
