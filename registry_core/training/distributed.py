"""One process or many: what the trainer needs to know about where it runs.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the trainer joins the
process group (NCCL with GPUs, Gloo on CPU), wraps the model in
DistributedDataParallel and lets only rank 0 write and log. Alone, every method here
is a no-op, so the training loop has a single code path.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ..errors import TrainingError


@dataclass
class Distributed:
    rank: int
    world: int
    device: torch.device
    owns_group: bool = False
    ddp: nn.parallel.DistributedDataParallel | None = None

    @classmethod
    def from_environment(cls, device: str | None = None) -> Distributed:
        """Join the ``torchrun`` process group when there is one, else run alone."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        chosen = _device(device, int(os.environ.get("LOCAL_RANK", "0")))
        if world == 1:
            return cls(0, 1, chosen)
        owns = not dist.is_initialized()
        if owns:
            dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
        return cls(dist.get_rank(), dist.get_world_size(), chosen, owns)

    @classmethod
    def single(cls, device: str | None = None) -> Distributed:
        return cls(0, 1, _device(device, 0))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """DistributedDataParallel around ``model`` when there are several processes."""
        if self.world == 1:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        self.ddp = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        return self.ddp

    @contextlib.contextmanager
    def no_sync(self, skip: bool) -> Iterator[None]:
        """Skip the gradient all-reduce (an accumulation micro-batch that is not the last)."""
        if skip and self.ddp is not None:
            with self.ddp.no_sync():
                yield
        else:
            yield

    def autocast(self, amp: str | None):
        if amp in ("bf16", "fp16"):
            return torch.autocast(self.device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)
        return contextlib.nullcontext()

    def sum(self, values: list[float]) -> list[float]:
        """``values`` summed over all processes."""
        return self.sum_tensor(torch.tensor(values, dtype=torch.float64, device=self.device)).tolist()

    def sum_tensor(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            dist.all_reduce(tensor)
        return tensor

    def close(self, wait: bool = True) -> None:
        """Leave the process group. With ``wait`` every process first waits for the
        others (rank 0 is still writing checkpoints when the rest finish): tearing Gloo
        down under a peer that is still connected can abort the process. After an
        error, ``wait=False``: the other processes may never arrive."""
        if self.owns_group and dist.is_initialized():
            if wait:
                dist.barrier()
            self.ddp = None
            dist.destroy_process_group()
            self.owns_group = False


def _device(name: str | None, local_rank: int) -> torch.device:
    """The device asked for, checked here so that a missing GPU is one clear error, not
    a driver traceback; plain ``cuda`` is this process's GPU (``LOCAL_RANK``)."""
    if name is None:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise TrainingError(f"unknown device {name!r}: {exc}") from None
    if device.type != "cuda":
        return device
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise TrainingError(f"device {name!r} asked for, but there is no GPU here (torch finds no CUDA device); "
                            "run on the CPU instead (--device cpu)")
    if device.index is None:
        device = torch.device("cuda", local_rank)
    if device.index >= count:
        raise TrainingError(f"device {str(device)!r} asked for, but this machine has {count} GPU(s): cuda:0 to cuda:{count - 1}")
    torch.cuda.set_device(device)
    return device
