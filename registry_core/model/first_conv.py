"""Which convolution takes the image: what ``in_chans`` adaptation rewrites and what
timm's ``pretrained_cfg["first_conv"]`` names."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import SpecError


def find_first_conv(model: Any) -> tuple[str, nn.Conv2d | None]:
    """``(module path, module)`` of the first convolution: the one ``meta.first_conv``
    names, else the first ``Conv2d`` a forward pass calls (registration order is not
    enough: VGG's stem is empty and its first convolution is a block's). ``("", None)``
    when the model runs none; ``SpecError`` when the spec names no ``Conv2d`` or the
    stem cannot run."""
    modules = dict(model.named_modules())
    if model.meta.first_conv:
        named = modules.get(model.meta.first_conv)
        if not isinstance(named, nn.Conv2d):
            raise SpecError(f"{model.model_name}: its spec names {model.meta.first_conv!r} as the first "
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
        raise SpecError(f"{model.model_name}: cannot find its first convolution ({type(exc).__name__}: {exc})") from None
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return (convs[called[0]], called[0]) if called else ("", None)


class _FirstConvCalled(Exception):
    """Stops the probing forward pass at the first convolution."""
