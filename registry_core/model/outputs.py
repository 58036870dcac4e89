"""What a model with auxiliary heads returns in training mode, and the loss over it.

``AuxLogits`` is a tuple, ``(logits, *auxiliary logits)``, so torchvision-style code
unpacks it; which auxiliary output sits where, and under which attribute name, is the
spec's to say (``AuxHeadSpec(output_name=..., output_position=...)``): torchvision's
GoogLeNet gives ``(logits, aux_logits2, aux_logits1)``, its Inception v3
``(logits, aux_logits)``. The core names no architecture: it only follows the spec.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

RESERVED = frozenset({"logits", "aux", "weights", "count", "index"})
"""Names an auxiliary output may not take: ``AuxLogits``' own attributes and tuple methods."""


class AuxLogits(tuple):
    """A model's training-mode output with auxiliary heads: the tuple
    ``(logits, *aux outputs in the spec's output order)``.

    ``logits`` are the main classifier's, ``aux`` the auxiliary classifiers' (in spec
    order), ``weights`` the factor each auxiliary loss gets (GoogLeNet 0.3, Inception
    v3 0.4); each auxiliary output with an ``output_name`` is also that attribute
    (``out.aux_logits1``). In eval mode such a model returns plain logits.
    """

    logits: Tensor
    aux: tuple[Tensor, ...]
    weights: tuple[float, ...]

    def __new__(cls, logits: Tensor, aux: Sequence[Tensor], weights: Sequence[float], names: Sequence[str] = (),
                order: Sequence[int] = ()) -> AuxLogits:
        """``names[k]`` is the attribute of ``aux[k]`` (``''``: none); ``order`` lists the
        ``aux`` positions in tuple order (default: spec order)."""
        aux = tuple(aux)
        output = super().__new__(cls, (logits, *(aux[k] for k in (order or range(len(aux))))))
        output.logits, output.aux, output.weights = logits, aux, tuple(weights)
        for name, tensor in zip(names, aux):
            if name:
                setattr(output, name, tensor)
        return output

    def __reduce__(self):
        names = [next((k for k, v in vars(self).items() if v is t and k not in RESERVED), "") for t in self.aux]
        order = [next(k for k, t in enumerate(self.aux) if t is item) for item in self[1:]]
        return AuxLogits, (self.logits, self.aux, self.weights, names, order)


def classification_loss(output: Tensor | AuxLogits, target: Tensor, criterion=F.cross_entropy) -> Tensor:
    """The training loss for any model's output, adding weighted auxiliary losses."""
    if isinstance(output, AuxLogits):
        loss = criterion(output.logits, target)
        for weight, aux in zip(output.weights, output.aux):
            loss = loss + weight * criterion(aux, target)
        return loss
    return criterion(output, target)


def main_logits(output: Tensor | AuxLogits) -> Tensor:
    return output.logits if isinstance(output, AuxLogits) else output
