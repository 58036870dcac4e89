"""Finding the weights inside a training checkpoint: the one place that knows the containers.

Training scripts save more than weights. timm's ``train.py`` writes ``state_dict``,
``state_dict_ema``, ``optimizer``, ``args`` and more; torchvision's reference scripts
``model``, ``model_ema``, ``optimizer``, ``lr_scheduler`` and ``args``; Lightning
``state_dict`` beside its loops and callbacks. Wrappers prefix every key:
DistributedDataParallel and ``AveragedModel`` with ``module.``, ``torch.compile`` with
``_orig_mod.``, a LightningModule holding the network as ``self.model`` with ``model.``.
``unwrap`` walks into the weights, removes the prefixes and the entries that are not
weights, and records each step so that the user is told what was done.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from torch import Tensor

from ..errors import WeightsError
from .validate import shown

WEIGHT_ENTRIES = ("state_dict", "model", "module", "net", "model_state_dict")
EMA_ENTRIES = ("state_dict_ema", "model_ema")
WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # a wrapper's: removed whenever every key has one
HOLDER_PREFIXES = ("model.", "net.")  # the attribute a training module keeps the network in
BOOKKEEPING = ("n_averaged",)  # AveragedModel's count of averaged steps: a tensor, not a weight
MAX_DEPTH = 4  # entries walked into; deeper nesting is not a checkpoint anyone writes
SHOWN_NAMES = 5


@dataclass(frozen=True)
class ForeignCheckpoint:
    """The weights found in another library's checkpoint, and how they were found.

    ``steps`` says what was unwrapped, in order (``entry 'state_dict_ema'``, ``prefix
    'module.' removed``, ``dropped n_averaged``); ``others`` names the file's other sets
    of weights (its EMA copy, say). ``holder_prefix`` is a ``model.``/``net.`` prefix
    that was removed because every key had it; a layout whose own keys start with it
    is matched with ``keeping_holder_prefix()``.
    """

    path: str
    state: dict[str, Tensor]
    steps: tuple[str, ...] = ()
    others: tuple[str, ...] = ()
    holder_prefix: str = ""

    @property
    def unwrapped(self) -> str:
        """What was done to reach the weights, in words ("" for a plain state dict)."""
        return "; ".join(self.steps)

    def keeping_holder_prefix(self) -> ForeignCheckpoint | None:
        """The same weights with the holder prefix left on (``None`` when none was removed)."""
        if not self.holder_prefix:
            return None
        removed = f"prefix {self.holder_prefix!r} removed"
        return replace(self, state={self.holder_prefix + k: v for k, v in self.state.items()},
                       steps=tuple(s for s in self.steps if s != removed), holder_prefix="")


def unwrap(obj: object, path: object, *, ema: bool = False) -> ForeignCheckpoint:
    """The weights in ``obj`` (what a checkpoint file held), with the steps that found
    them. ``ema=True`` takes the EMA copy (``state_dict_ema`` or ``model_ema``), and a
    file without one is a ``WeightsError``; every other failure is one too."""
    steps: list[str] = []
    others: list[str] = []
    for depth in range(MAX_DEPTH):
        if not isinstance(obj, Mapping):
            break
        wanted = EMA_ENTRIES if ema and depth == 0 else WEIGHT_ENTRIES
        found = [k for k in wanted if isinstance(obj.get(k), Mapping)]
        if depth == 0:
            others = [k for k in (*EMA_ENTRIES, *WEIGHT_ENTRIES) if k not in found[:1] and isinstance(obj.get(k), Mapping)]
            if ema and not found:
                raise WeightsError(f"{path} holds no EMA weights ({' or '.join(EMA_ENTRIES)}); "
                                   f"{_entries(obj)}")
        if not found:
            break
        steps.append(f"entry {found[0]!r}")
        obj = obj[found[0]]
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path} holds {shown(type(obj).__name__)}, not a state dict")
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, Tensor) and k not in BOOKKEEPING}
    if not tensors:
        raise WeightsError(f"{path} holds no weights{' under ' + steps[-1] if steps else ''}: {_entries(obj)}")
    dropped = [shown(k, 40) for k in obj if k not in tensors]
    if dropped:
        more = f" and {len(dropped) - SHOWN_NAMES} more" if len(dropped) > SHOWN_NAMES else ""
        steps.append(f"dropped {', '.join(dropped[:SHOWN_NAMES])}{more} (not weights)")
    state, removed = strip_prefixes(tensors, WRAPPER_PREFIXES)
    holder = next((p for p in HOLDER_PREFIXES if _all_share(state, p)), "")
    if holder:
        state, _ = strip_prefixes(state, (holder,))
        state, inner = strip_prefixes(state, WRAPPER_PREFIXES)
        removed += [holder, *inner]
    steps += [f"prefix {p!r} removed" for p in removed]
    return ForeignCheckpoint(str(path), state, tuple(steps), tuple(others), holder)


def strip_prefixes(state: dict[str, Tensor], prefixes: tuple[str, ...]) -> tuple[dict[str, Tensor], list[str]]:
    """Remove each of ``prefixes`` while every key carries it (in any order and
    nesting); returns the state and the prefixes removed, in order."""
    removed = []
    changed = True
    while changed:
        changed = False
        for prefix in prefixes:
            if _all_share(state, prefix):
                state = {k[len(prefix):]: v for k, v in state.items()}
                removed.append(prefix)
                changed = True
    return state, removed


def _all_share(state: Mapping[str, Tensor], prefix: str) -> bool:
    return bool(state) and all(k.startswith(prefix) and len(k) > len(prefix) for k in state)


def _entries(obj: Mapping) -> str:
    names = [shown(k, 40) for k in list(obj)[:SHOWN_NAMES]]
    more = f" and {len(obj) - SHOWN_NAMES} more" if len(obj) > SHOWN_NAMES else ""
    return f"its entries are {', '.join(names)}{more}" if names else "it is empty"
