"""What a model with auxiliary heads returns in training mode, and the loss over it.

``AuxLogits`` is a tuple, ``(logits, *auxiliary logits)``, so torchvision-style code
unpacks it; which auxiliary output sits where, and under which attribute name, is the
spec's to say (``AuxHeadSpec(output_name=..., output_position=...)``): torchvision's
GoogLeNet gives ``(logits, aux_logits2, aux_logits1)``, its Inception v3
``(logits, aux_logits)``. The core names no architecture: it only follows the spec.
"""

from __future__ import annotations

import collections
import functools
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

    Each layout of outputs is its own named tuple (a subclass of this class, made once
    per layout), so tools that rebuild a model's outputs field by field (``torch.fx``,
    ``torch.export``'s pytrees) handle it as they handle torchvision's ``GoogLeNetOutputs``.
    """

    __slots__ = ()
    _aux_fields: tuple[str, ...] = ()  # the fields of ``aux`` in spec order
    _weights: tuple[float, ...] = ()

    def __new__(cls, logits: Tensor, aux: Sequence[Tensor], weights: Sequence[float], names: Sequence[str] = (),
                order: Sequence[int] = ()) -> AuxLogits:
        """``names[k]`` is the attribute of ``aux[k]`` (``''``: none); ``order`` lists the
        ``aux`` positions in tuple order (default: spec order)."""
        aux = tuple(aux)
        fields = tuple(name or f"aux_{k}" for k, name in zip(range(len(aux)), (*names, *[""] * len(aux))))
        order = tuple(order) or tuple(range(len(aux)))
        layout = _layout(tuple(fields[k] for k in order), fields, tuple(float(w) for w in weights))
        return layout(logits, *(aux[k] for k in order))

    @property
    def logits(self) -> Tensor:
        return self[0]

    @property
    def aux(self) -> tuple[Tensor, ...]:
        return tuple(getattr(self, field) for field in self._aux_fields)

    @property
    def weights(self) -> tuple[float, ...]:
        return self._weights

    def __reduce__(self):
        return _rebuild, (type(self)._fields[1:], self._aux_fields, self._weights, tuple(self))  # type: ignore[attr-defined]


@functools.cache
def _layout(tuple_fields: tuple[str, ...], aux_fields: tuple[str, ...], weights: tuple[float, ...]) -> type:
    """The named-tuple class of one layout of outputs (fields after ``logits`` in tuple order)."""
    base = collections.namedtuple("AuxLogits", ("logits", *tuple_fields))  # type: ignore[misc]
    # the named tuple comes first in the order of bases: its __new__, fields and repr win
    return type("AuxLogits", (base, AuxLogits), {"__slots__": (), "_aux_fields": aux_fields, "_weights": weights})


def _rebuild(tuple_fields: tuple[str, ...], aux_fields: tuple[str, ...], weights: tuple[float, ...], values: tuple) -> AuxLogits:
    return _layout(tuple_fields, aux_fields, weights)(*values)


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
