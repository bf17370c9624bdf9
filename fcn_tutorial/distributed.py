"""Training on several GPUs or machines with ``torchrun`` (DistributedDataParallel).

``torchrun --nproc_per_node 4 -m fcn_tutorial.cli train ...`` starts one process per GPU and sets
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``. :func:`init_distributed` reads them and joins the group
(NCCL on CUDA, gloo on the CPU); without them it returns a single-process context and nothing else
changes. Each process trains on its own shard of every epoch (:class:`~torch.utils.data.DistributedSampler`),
gradients are averaged by DDP, confusion matrices are summed across processes, and only rank 0
writes files.

Validation must count every image exactly once. ``DistributedSampler`` pads the last round by
repeating images so that every process gets the same number; :class:`ShardSampler` does not pad.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

__all__ = ["DistributedContext", "init_distributed", "ShardSampler", "all_reduce_sum", "barrier", "cleanup"]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: its rank among ``world_size`` processes and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 is the one process that writes checkpoints, logs and figures."""
        return self.rank == 0


def init_distributed(device: str = "auto") -> DistributedContext:
    """Join the process group that ``torchrun`` set up, or describe a single process.

    ``device`` is read by :func:`fcn_tutorial.device.resolve_device` (``"auto"``: the fastest device here;
    a device that is not there is a ``ValueError``). Under ``torchrun`` on CUDA each process takes the GPU
    ``LOCAL_RANK``.
    """
    from .device import resolve_device

    resolved = resolve_device(device)
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistributedContext(device=resolved)

    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    want_cuda = resolved.type == "cuda"
    if want_cuda:
        torch.cuda.set_device(local_rank)
        process_device = torch.device("cuda", local_rank)
    else:
        process_device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if want_cuda else "gloo")
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, device=process_device)


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world_size, ...`` of a data set: every item once, no padding, no shuffle."""

    def __init__(self, dataset_size: int, rank: int, world_size: int):
        self.indices = list(range(rank, dataset_size, world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all processes in place (a no-op for a single process)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier() -> None:
    """Wait for every process (a no-op for a single process)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    """Leave the process group, if any."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
