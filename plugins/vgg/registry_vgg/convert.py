"""Converters between torchvision's or timm's VGG state dicts and ours.

Both libraries number every layer of ``features`` in order (conv, [BN], ReLU, and a
max-pool after the last conv of a stage); ``feature_prefixes`` walks a spec the same
way, so the index map follows the model table. timm stores the first two head layers
as convolutions (4096x512x7x7 and 4096x4096x1x1) where we, like torchvision, use
linear layers, so its converter reshapes those two weights as well as renaming. timm
builds its VGGs without dropout, so our model converted from timm does too
(``drop_rate=0``): the two then agree in training mode as well as in eval.
"""

from functools import partial

from registry_core import Converter, ModelSpec, invert_prefixes, rename_prefixes

from .models import HEAD, MODELS

TORCHVISION_HEAD = {"classifier.0.": "head.hidden.0.", "classifier.3.": "head.hidden.1.", "classifier.6.": "head.fc."}
TIMM_HEAD = {"pre_logits.fc1.": "head.hidden.0.", "pre_logits.fc2.": "head.hidden.1.", "head.fc.": "head.fc."}

# timm's convolution kernel for each of our hidden linear layers
TIMM_CONV_KERNELS = {"head.hidden.0.weight": HEAD.options["pool_size"], "head.hidden.1.weight": 1}


def feature_prefixes(spec: ModelSpec) -> dict[str, str]:
    """``features.<i>.`` -> ``stages.<s>.<b>.conv.`` / ``.bn.`` for every weighted layer."""
    prefixes, index = {}, 0
    for s, stage in enumerate(spec.stages):
        for b, (_, _, stride, options) in enumerate(stage.expand()):
            for layer in ("conv", "bn") if options.get("batch_norm") else ("conv",):
                prefixes[f"features.{index}."] = f"stages.{s}.{b}.{layer}."
                index += 1
            index += 2 if stride > 1 else 1  # the ReLU, and the max-pool closing a stage
    return prefixes


def timm_to_ours(state, prefixes):
    """Rename, then flatten timm's two head convolutions into linear weights."""
    state = rename_prefixes(state, prefixes)
    for key in TIMM_CONV_KERNELS:
        state[key] = state[key].flatten(1)
    return state


def ours_to_timm(state, prefixes):
    """Fold our two hidden linear weights back into timm's convolution shapes, then rename."""
    state = dict(state)
    for key, kernel in TIMM_CONV_KERNELS.items():
        weight = state[key]
        state[key] = weight.reshape(weight.shape[0], -1, kernel, kernel)
    return rename_prefixes(state, prefixes)


# source library: (its head's prefixes, to ours, from ours, our create options); both maps take ``prefixes=``
LIBRARIES = {
    "torchvision": (TORCHVISION_HEAD, rename_prefixes, rename_prefixes, {}),
    "timm": (TIMM_HEAD, timm_to_ours, ours_to_timm, {"drop_rate": 0.0}),
}


def _converter(source: str, name: str, spec: ModelSpec) -> Converter:
    head, to_ours, from_ours, create_kwargs = LIBRARIES[source]
    keys = {**feature_prefixes(spec), **head}
    return Converter(source, name, partial(to_ours, prefixes=keys), partial(from_ours, prefixes=invert_prefixes(keys)),
                     create_kwargs=create_kwargs)


def converters() -> list[Converter]:
    """Every model from each library (the names are the same in ours, torchvision and timm)."""
    return [_converter(source, name, build()) for source in LIBRARIES for name, build in MODELS.items()]
