"""The loader that feeds datasets to the trainer: a seeded order per epoch, epoch-indexed items.

Datasets whose `epoch_indexed` is true take indices past their length: index `e * len + i` is
item i of epoch e (other crops, other flips). The sampler of `make_loader` adds that offset; call
`loader.sampler.set_epoch(epoch)` at the start of each epoch, as with DistributedSampler.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler


class EpochSampler(Sampler[int]):
    """Wraps a sampler of indices in [0, n) and, for `epoch_indexed` datasets, adds epoch * n.

    `set_epoch` also reaches the wrapped sampler (DistributedSampler or the seeded shuffle).
    """

    def __init__(self, base: Sampler[int], n: int, offset_by_epoch: bool):
        self.base = base
        self.n = n
        self.offset_by_epoch = offset_by_epoch
        self.epoch = 0
        self.skip = 0  # indices to leave out at the start of the next pass only (resuming mid-epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(self.epoch)

    def __iter__(self) -> Iterator[int]:
        offset = self.epoch * self.n if self.offset_by_epoch else 0
        skip, self.skip = self.skip, 0
        for position, i in enumerate(self.base):
            if position >= skip:
                yield offset + int(i)

    def __len__(self) -> int:
        return len(self.base)


class _SeededShuffle(Sampler[int]):
    """A permutation of range(n) drawn from (seed, epoch): the same on every run."""

    def __init__(self, n: int, seed: int, shuffle: bool):
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.n))
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def _worker_init(_worker_id: int) -> None:
    torch.set_num_threads(1)  # decoding is per-process; do not oversubscribe the cores


def make_loader(
    dataset: Dataset,
    batch_size: int,
    num_workers: int = 0,
    seed: int = 0,
    distributed: bool = False,
    shuffle: bool = True,
    drop_last: bool = True,
    pin_memory: bool = False,
    num_replicas: int | None = None,
    rank: int | None = None,
) -> DataLoader:
    """A DataLoader of (uint8 [B, 3, S, S], int64 [B]) batches; images are decoded in the workers.

    The order is a seeded permutation per epoch (or DistributedSampler's shard of one when
    `distributed`; `num_replicas`/`rank` default to the initialised process group). Call
    `loader.sampler.set_epoch(epoch)` before each epoch: it changes the order and, for
    `epoch_indexed` datasets, the random crops and flips. Workers persist across epochs, so the
    photo caches of PhotoCrops are built once per worker.
    """
    n = len(dataset)
    if distributed:
        base: Sampler[int] = DistributedSampler(
            dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
    else:
        base = _SeededShuffle(n, seed, shuffle)
    sampler = EpochSampler(base, n, bool(getattr(dataset, "epoch_indexed", False)))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        worker_init_fn=_worker_init if num_workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),
    )
