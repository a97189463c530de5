"""A seeded, sharded, resumable sampler: which items each rank trains on, in which order.

Epoch e's order is a permutation drawn from (seed, e) alone; rank r takes every world_size-th
item of it (the tail that does not divide evenly is dropped, so every rank runs the same number
of steps and no two ranks share an item). With per-item sampling weights (several manifests
mixed in chosen proportions) the epoch is instead as many draws with replacement as there are
items, shared out the same way (an item may then come up more than once). Each index comes with a crop seed
derived from (seed, epoch, index), so random crops and augmentations depend on neither the
number of workers nor the batch size, and `start` resumes an epoch exactly where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from avdiff.errors import InputError


def crop_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for item `index` in `epoch` (independent streams per epoch and item)."""
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 1_000_033 + index)
    return int(torch.randint(0, 2**62, (1,), generator=generator))


class ShardedEpochSampler(Sampler[tuple[int, int]]):
    """Yields (item index, crop seed) for this rank, from position `start` of epoch `epoch`."""

    def __init__(self, num_items: int, seed: int, rank: int = 0, world_size: int = 1, shuffle: bool = True,
                 weights: Sequence[float] | None = None) -> None:
        if num_items < world_size:
            raise InputError(f"{num_items} items cannot be shared among {world_size} processes")
        if weights is not None and (len(weights) != num_items or min(weights) < 0 or sum(weights) <= 0):
            raise InputError(f"need {num_items} non-negative sampling weights with a positive sum")
        self.weights = None if weights is None else torch.tensor(weights, dtype=torch.float64)
        self.num_items = num_items
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle
        self.epoch = 0
        self.start = 0

    @property
    def items_per_rank(self) -> int:
        """Items each rank sees per epoch."""
        return self.num_items // self.world_size

    def set_position(self, epoch: int, start: int = 0) -> None:
        """Continue from item `start` (of this rank's share) of `epoch`."""
        if not 0 <= start <= self.items_per_rank:
            raise ValueError(f"start {start} outside this rank's {self.items_per_rank} items")
        self.epoch, self.start = epoch, start

    def order(self, epoch: int) -> list[int]:
        """This rank's item indices for `epoch`, in order."""
        if self.weights is not None:
            generator = torch.Generator().manual_seed(self.seed * 7919 + epoch)
            draws = torch.multinomial(self.weights, self.num_items, replacement=True, generator=generator)
            permutation = draws.tolist()
        elif self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 7919 + epoch)
            permutation = torch.randperm(self.num_items, generator=generator).tolist()
        else:
            permutation = list(range(self.num_items))
        usable = permutation[: self.items_per_rank * self.world_size]
        return usable[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in self.order(self.epoch)[self.start :]:
            yield index, crop_seed(self.seed, self.epoch, index)

    def __len__(self) -> int:
        return self.items_per_rank - self.start
