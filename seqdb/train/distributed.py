"""DistributedDataParallel plumbing.

The trainer never reads the environment: it asks `torch.distributed` whether a process group
is initialised. Whoever starts the processes (the runner under `torchrun`, or a test with
`torch.multiprocessing`) calls `init_from_torchrun()` / `init_process_group` first.

Within one optimizer step every process takes windows `idx[rank::world]` of the same
effective batch; the loss denominators are global, and each process scales its loss by
`world` because DDP averages gradients, so the summed gradient equals the one-process one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1

    @classmethod
    def current(cls) -> "DistContext":
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        """In-place sum over processes (no-op in one process)."""
        if not self.active:
            return t
        if dist.get_backend() == "nccl":  # nccl reduces CUDA tensors only
            u = t.cuda()
            dist.all_reduce(u, op=dist.ReduceOp.SUM)
            return t.copy_(u.cpu())
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def broadcast_flags(self, flags: list[int]) -> list[int]:
        """Rank 0's decisions (stop, prune, ...) for every process."""
        if not self.active:
            return flags
        t = torch.tensor(flags, dtype=torch.int64)
        if dist.get_backend() == "nccl":
            t = t.cuda()
        dist.broadcast(t, src=0)
        return [int(x) for x in t.tolist()]


def init_group(device: str, timeout_s: float = 7 * 86400.0) -> tuple[DistContext, str]:
    """Under a torchrun-style launch (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT
    set): join the group with gloo for `cpu`, nccl for `cuda`; returns (context, this rank's
    device: cuda:LOCAL_RANK or cpu). The long timeout lets the other ranks wait while rank 0
    waits for work; a rank that dies breaks the others' collectives at once."""
    from datetime import timedelta

    local_rank = int(os.environ["LOCAL_RANK"])
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout_s))
    return DistContext.current(), f"cuda:{local_rank}" if cuda else "cpu"


def broadcast_object(obj: object = None) -> object:
    """Rank 0's `obj` on every rank (pickled; small control messages only)."""
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_object(obj: object) -> list:
    """Every rank's `obj`, in rank order; raises when a rank has gone."""
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def init_from_torchrun(backend: str | None = None) -> tuple[DistContext, str]:
    """Under torchrun (RANK/WORLD_SIZE/LOCAL_RANK set): init the process group and return
    (context, device). Outside torchrun: no process group, device cuda:0 or cpu."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistContext(), "cuda" if torch.cuda.is_available() else "cpu"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend or ("nccl" if use_cuda else "gloo"))
    return DistContext.current(), f"cuda:{local_rank}" if use_cuda else "cpu"
