"""Running the training loop under `torchrun`: the process group, and agreeing across processes.

One process (no WORLD_SIZE, or 1) needs none of this: every helper then returns its input.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist
import torch.nn as nn

from fractal_studio.devices import pick_device
from fractal_studio.errors import UserError

_T = TypeVar("_T")


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


def together(action: Callable[[], _T], env: Dist, device, what: str, ranks: str = "all") -> _T | None:
    """Runs `action` on every process (`ranks="all"`) or on process 0 alone (`"main"`), then makes
    every process learn whether it failed anywhere, so that none goes on to wait forever in a
    collective call for one that has stopped (a full disk at rank 0's checkpoint, a damaged data
    file): where it failed its own error is raised, on every other process a UserError naming
    `what`. Returns the action's result (None where it did not run)."""
    if not env.enabled:
        return action()
    result, failure = None, None
    if ranks == "all" or env.main:
        try:
            result = action()
        except BaseException as error:  # Ctrl+C too: the others must not wait for this process
            failure = error
    if any_rank(failure is not None, env, device):
        if failure is not None:
            raise failure
        raise UserError(f"another process failed while {what}, so process {env.rank} stops too (that "
                        "process's message says why)")
    return result


def replica_difference(model: nn.Module) -> float:
    """Largest absolute difference between this process's parameters and any other's (all ranks)."""
    flat = torch.cat([p.detach().reshape(-1).float() for p in model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, flat)
    return max(float((g - flat).abs().max()) for g in gathered)
