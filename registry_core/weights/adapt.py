"""Fitting a file's tensors to a model built with other options: a features-only model
drops the file's head and final norm, and another number of input channels adapts the
first convolution."""

from __future__ import annotations

import math

from torch import Tensor, nn

from ..errors import SpecError, WeightsError
from ..model.compose import ComposedModel
from ..model.first_conv import find_first_conv


def prepare_state(model: ComposedModel, state: dict[str, Tensor], file_chans: int | None, path) -> list[str]:
    """Adapt ``state`` in place to ``model``; returns notes for the user."""
    notes = []
    if model.features_only:
        for key in [k for k in state if k.startswith(("head.", "aux_heads.", "norm."))]:  # a features model has no final norm
            del state[key]
    want = model.meta.input_size[0]
    if file_chans is not None and file_chans != want:
        name, conv = first_conv(model)
        key = f"{name}.weight"
        weight = state.get(key)
        if weight is None or weight.dim() != 4 or weight.shape[1] != file_chans or conv.groups != 1:
            raise WeightsError(f"{path}: cannot adapt {key} from {file_chans} to {want} input channels")
        state[key] = adapt_input_channels(weight, want)
        notes.append(f"{path}: {key} adapted from {file_chans} to {want} input channels")
    return notes


def first_conv(model: ComposedModel) -> tuple[str, nn.Conv2d]:
    """The convolution that takes the image (see ``model.first_conv.find_first_conv``)."""
    try:
        name, conv = find_first_conv(model)
    except SpecError as exc:
        raise WeightsError(str(exc)) from None
    if conv is None:
        raise WeightsError(f"{model.model_name}: in_chans differs from the file, but the model runs no Conv2d to adapt")
    return name, conv


def adapt_input_channels(weight: Tensor, in_chans: int) -> Tensor:
    """A first-convolution weight for ``in_chans`` inputs: summed over the file's
    channels for one (a grey image gives what the same image in colour gave), else the
    channels repeated and scaled so that the response to repeated inputs is unchanged."""
    source = weight.float()
    if in_chans == 1:
        adapted = source.sum(dim=1, keepdim=True)
    else:
        have = source.shape[1]
        adapted = source.repeat(1, math.ceil(in_chans / have), 1, 1)[:, :in_chans] * (have / in_chans)
    return adapted.to(weight.dtype).contiguous()
