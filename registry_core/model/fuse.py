"""Folding each BatchNorm into the convolution that feeds it, for inference (``ComposedModel.fuse``).

In eval mode a BatchNorm2d is a fixed per-channel affine map. When it reads a
convolution's output and nothing else reads that output, the two are one convolution
with rescaled weights and a bias, and the BatchNorm's pass over the map disappears.

The core knows no architecture, so pairs are found rather than named: each part of the
model is traced with ``torch.fx``, and a Conv2d call whose only user is a BatchNorm2d
call is a pair. A part that does not trace (input-dependent control flow, a forward
taking options such as a head's ``pre_logits``) is tried child by child instead, so it
costs only its own pairs. Nothing is rewritten into a graph: the folded convolution gets
its new weights in place and the BatchNorm becomes an ``nn.Identity``, so every component
keeps its class, its own ``forward`` and its attributes, the model keeps its API, and
what scripted before still scripts.

Folding is only sound where the trace vouches for it, so a pair is skipped when either
module is registered twice (shared with another place), is called more than once, has
hooks, or has its tensors read directly rather than by calling it.

Afterwards the model is for inference only. Its class becomes ``FusedComposedModel``,
whose ``train()`` raises, and ``fused`` is set, which ``registry_core.save`` refuses:
the state dict no longer matches the architecture the file would name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import torch
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from ..errors import SpecError, TrainingError
from .compose import ComposedModel


class FusedComposedModel(ComposedModel):
    """A ``ComposedModel`` after ``fuse()``: the same model for inference, refusing ``train()``.

    Training it would update folded weights with no BatchNorm left to normalise them, so
    ``train()`` raises a ``TrainingError`` (before changing any module's mode) rather than
    letting that happen quietly; ``eval()`` works as always.
    """

    def train(self, mode: bool = True) -> FusedComposedModel:
        if mode:
            raise TrainingError(f"{self.model_name or 'this model'} was fused for inference (model.fuse()): its BatchNorm "
                                "layers are folded into the convolutions before them and no longer exist, so it cannot "
                                "train; train a model that was never fused")
        return super().train(False)


def fuse(model: ComposedModel, channels_last: bool = False) -> ComposedModel:
    """Fold every BatchNorm2d that can be folded, in place, and return the model, now a
    ``FusedComposedModel`` with ``fused = True`` (which ``registry_core.save`` refuses).

    The model must be in eval mode: folding uses the running statistics that only eval
    mode applies, so a model in training mode is refused with a ``TrainingError`` rather
    than switched quietly. ``channels_last`` also converts parameters and buffers to that
    memory format (feed channels_last inputs too for oneDNN's fastest path).

    The outputs move by float rounding only: ``max |fused - unfused|`` stays within
    ``2e-6 x max |unfused|`` (measured at most 7.2e-7 over every registered model with
    BatchNorms; in absolute terms up to 6.2e-6 on ResNet-152, whose outputs reach 25).
    """
    if model.training:
        raise TrainingError(f"fuse() folds BatchNorm's running statistics, which only eval mode uses: "
                            f"call {model.model_name or 'the model'}.eval() before fuse()")
    if type(model) not in (ComposedModel, FusedComposedModel):
        raise SpecError(f"fuse() works on a ComposedModel itself, not on the subclass {type(model).__name__}")
    shared = _shared_modules(model)
    for part in model.children():
        _fold_within(part, shared)
    model.__class__ = FusedComposedModel
    model.fused = True
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def _shared_modules(model: nn.Module) -> set[int]:
    """Modules registered under more than one name: new weights for one would change the other."""
    counts = Counter(id(module) for _, module in model.named_modules(remove_duplicate=False))
    return {key for key, count in counts.items() if count > 1}


def _fold_within(module: nn.Module, shared: set[int]) -> None:
    """Fold the pairs found by tracing ``module``, or, if it does not trace, within each child."""
    if next(module.children(), None) is None:
        return
    try:
        graph = fx.Tracer().trace(module)
    except Exception:  # tracing runs a plugin's forward on proxies; any failure means "not traceable"
        for child in module.children():
            _fold_within(child, shared)
        return
    for conv_name, bn_name in list(_conv_bn_pairs(module, graph, shared)):
        _fold_pair(module, conv_name, bn_name)


def _conv_bn_pairs(root: nn.Module, graph: fx.Graph, shared: set[int]) -> Iterator[tuple[str, str]]:
    """``(conv, batchnorm)`` module paths under ``root`` where the BatchNorm is called on the
    convolution's output and on nothing else, and nothing else reads that output."""
    modules = dict(root.named_modules())
    calls = Counter(node.target for node in graph.nodes if node.op == "call_module")
    read_directly = [str(node.target) for node in graph.nodes if node.op == "get_attr"]

    def foldable(name: str) -> bool:
        module = modules[name]
        return (calls[name] == 1 and id(module) not in shared and not _has_hooks(module)
                and not any(attr.startswith(name + ".") for attr in read_directly))

    for node in graph.nodes:
        if node.op != "call_module" or not _is_plain_batchnorm(modules[str(node.target)]):
            continue
        source = node.args[0] if len(node.args) == 1 and not node.kwargs else None
        if not (isinstance(source, fx.Node) and source.op == "call_module" and len(source.users) == 1):
            continue
        conv_name, bn_name = str(source.target), str(node.target)
        if _is_plain_conv(modules[conv_name]) and foldable(conv_name) and foldable(bn_name):
            yield conv_name, bn_name


def _is_plain_conv(module: nn.Module) -> bool:
    """A Conv2d computing what Conv2d computes (a subclass that, say, standardises its
    weights in ``forward`` would not fold)."""
    return isinstance(module, nn.Conv2d) and type(module).forward is nn.Conv2d.forward


def _is_plain_batchnorm(module: nn.Module) -> bool:
    """A BatchNorm2d that normalises with running statistics in eval mode."""
    return (isinstance(module, nn.BatchNorm2d) and type(module).forward is nn.BatchNorm2d.forward
            and not module.training and module.running_mean is not None and module.running_var is not None)


def _has_hooks(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks)


def _fold_pair(root: nn.Module, conv_name: str, bn_name: str) -> None:
    conv, bn = root.get_submodule(conv_name), root.get_submodule(bn_name)
    assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
    assert bn.running_mean is not None and bn.running_var is not None
    with torch.no_grad():
        conv.weight, conv.bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var,
                                                      bn.eps, bn.weight, bn.bias)
    parent, _, attr = bn_name.rpartition(".")
    setattr(root.get_submodule(parent), attr, nn.Identity().eval())
