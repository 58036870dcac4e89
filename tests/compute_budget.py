"""Which registered models a generic per-model check runs at full compute.

Tests parametrized over ``list_models()`` (a third party's models included) check every
model. Most checks are structural and run on the meta device for every model (specs,
shapes, parameter counts, ``feature_info``, the minimum input). The checks that build
real weights and run them (``check_model``'s training step, the tool chain, ``fuse()``,
a weights round trip, a trainer step) would, on the largest models, take the suite past
its time limit: ViT-H/14 has 632M parameters and costs 335 GFLOPs at its fixed 224x224
input. Such a test calls ``full_compute(name)`` first, which skips it, with the reason,
unless the model is

* cheap: at most ``CHEAP_PARAMS`` parameters and ``CHEAP_FLOPS`` FLOPs at its minimum
  input, so nothing is lost by running it; or
* its family's representative: the family member (``meta.family``) with the fewest
  FLOPs at its minimum input (then parameters), so every family's code runs at full
  compute once, whatever its size.

A skipped model is the same code, in other widths and depths, as its family's
representative, and the meta-device tests still build and shape-check it. Costs are
measured on the meta device (no weights), once per family and test process.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import pytest

import registry_core
from registry_core.model.compose import meta_device

CHEAP_PARAMS = 30_000_000
CHEAP_FLOPS = 2e9


class Cost(NamedTuple):
    """What running a model costs, in the order the representative is chosen by."""

    flops: int  # at its minimum input, batch 1
    params: int


class Profile(NamedTuple):
    family: str
    cost: Cost


@functools.cache
def profile(name: str) -> Profile:
    with meta_device():
        model = registry_core.create(name)
    flops = registry_core.count_flops(model, model.meta.min_input_size)
    return Profile(model.meta.family or name, Cost(flops, sum(p.numel() for p in model.parameters())))


@functools.cache
def representative(family: str) -> str:
    members = [n for n in registry_core.list_models() if profile(n).family == family]
    return min(members, key=lambda n: (profile(n).cost, n))


def full_compute_reason(name: str) -> str:
    """Why ``name`` runs at full compute, or "" when it does not."""
    family, cost = profile(name)
    if cost.params <= CHEAP_PARAMS and cost.flops <= CHEAP_FLOPS:
        return "cheap"
    return f"the {family} family's representative" if representative(family) == name else ""


def full_compute(name: str) -> None:
    """Skip the calling test unless ``name`` runs at full compute (see the module docstring)."""
    if not full_compute_reason(name):
        family, cost = profile(name)
        pytest.skip(f"{name}: {cost.params / 1e6:.0f}M parameters, {cost.flops / 1e9:.1f} GFLOPs at its minimum input; "
                    f"the {family} family runs at full compute on {representative(family)}, {name} on the meta device")


def full_compute_models() -> list[str]:
    """The registered models ``full_compute`` lets through."""
    return [n for n in registry_core.list_models() if full_compute_reason(n)]
