"""Fitting a file's tensors to a model built with other options: a features-only model
drops the file's head, and another number of input channels adapts the first
convolution."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..errors import WeightsError
from ..model.compose import ComposedModel


def prepare_state(model: ComposedModel, state: dict[str, Tensor], file_chans: int | None, path) -> list[str]:
    """Adapt ``state`` in place to ``model``; returns notes for the user."""
    notes = []
    if model.features_only:
        for key in [k for k in state if k.startswith(("head.", "aux_heads."))]:
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
    """The convolution that takes the image, by module path: the one the spec names in
    ``meta.first_conv``, else the first ``Conv2d`` a forward pass calls. Registration
    order is not enough: VGG's stem is empty and its first convolution is a block's."""
    modules = dict(model.named_modules())
    if model.meta.first_conv:
        named = modules.get(model.meta.first_conv)
        if not isinstance(named, nn.Conv2d):
            raise WeightsError(f"{model.model_name}: its spec names {model.meta.first_conv!r} as the first "
                               "convolution, but the model has no Conv2d there")
        return model.meta.first_conv, named
    convs = {module: name for name, module in modules.items() if isinstance(module, nn.Conv2d)}
    called: list[nn.Conv2d] = []

    def stop(module: nn.Conv2d, args: object) -> None:
        called.append(module)
        raise _FirstConvCalled

    reference = next(iter(model.parameters()), None)
    x = torch.zeros(2, *model.meta.min_input_size, device=reference.device if reference is not None else "meta",
                    dtype=reference.dtype if reference is not None else None)
    hooks = [module.register_forward_pre_hook(stop) for module in convs]
    was_training = model.training
    model.eval()  # no running statistics touched, whatever runs before the convolution
    try:
        with torch.no_grad():
            model.forward_features(x)
    except _FirstConvCalled:
        pass
    except Exception as exc:  # a model that cannot run its stem cannot say which conv comes first
        raise WeightsError(f"{model.model_name}: cannot find its first convolution ({type(exc).__name__}: {exc})") from None
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    if not called:
        raise WeightsError(f"{model.model_name}: in_chans differs from the file, but the model runs no Conv2d to adapt")
    return convs[called[0]], called[0]


class _FirstConvCalled(Exception):
    """Stops the probing forward pass at the first convolution."""


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
