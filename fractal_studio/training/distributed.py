"""Running the training loop under `torchrun`: the process group, and agreeing across processes.

One process (no WORLD_SIZE, or 1) needs none of this: every helper then returns its input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn

from fractal_studio.devices import pick_device


@dataclass
class Dist:
    world: int = 1
    rank: int = 0
    local_rank: int = 0
    owns_group: bool = False  # we initialised the process group, so we tear it down at the end

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_choice: str) -> tuple[Dist, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), pick_device(device_choice)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_choice)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(world, rank, local_rank, owns), device


def broadcast_int(value: int, env: Dist, device) -> int:
    if not env.enabled:
        return value
    t = torch.tensor([value], dtype=torch.long, device=device if device.type == "cuda" else "cpu")
    dist.broadcast(t, 0)
    return int(t.item())


def any_rank(flag: bool, env: Dist, device) -> bool:
    if not env.enabled:
        return flag
    t = torch.tensor([int(flag)], dtype=torch.long, device=device if device.type == "cuda" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def replica_difference(model: nn.Module) -> float:
    """Largest absolute difference between this process's parameters and any other's (all ranks)."""
    flat = torch.cat([p.detach().reshape(-1).float() for p in model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, flat)
    return max(float((g - flat).abs().max()) for g in gathered)
