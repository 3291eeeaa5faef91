"""torchrun support: one process per rank, chosen from the environment torchrun sets.

`train` calls `start_distributed` once; without WORLD_SIZE > 1 everything is a single process
and the collectives below are no-ops. Gloo on CPU, NCCL on GPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from vidcap_core.devices import pick_device


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    device: torch.device
    owns_group: bool  # True when this call created the process group (and must destroy it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def start_distributed(device_preference: str) -> DistContext:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_preference, local_rank)
    if world_size <= 1:
        return DistContext(0, 1, device, owns_group=False)
    owns_group = not dist.is_initialized()
    if owns_group:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), device, owns_group)


def stop_distributed(ctx: DistContext) -> None:
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(value: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if ctx.enabled:
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def broadcast_floats(values: list[float], ctx: DistContext) -> list[float]:
    """Rank 0's numbers (the schedule's decision: stop flag, LR scale), the same on every rank."""
    if not ctx.enabled:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.broadcast(tensor, src=0)
    return [float(v) for v in tensor.tolist()]


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()
