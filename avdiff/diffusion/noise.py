"""Per-item random numbers: item i's noise comes from generator i alone.

So a sample depends on its own seed only, never on the batch size, its position in the
batch or the number of GPUs (k-diffusion and diffusers do the same).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def make_generators(seeds: Sequence[int], device: torch.device | str = "cpu") -> list[torch.Generator]:
    """One seeded `torch.Generator` per item, on `device`: the pipeline draws its noise where it
    samples (no host-to-GPU copy per step), so a seed gives the same audio on every run of one
    device type; CPU and CUDA streams differ."""
    return [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds]


def randn_per_item(
    shape: Sequence[int],
    generators: Sequence[torch.Generator],
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Standard normal noise of `shape` (B, ...) whose item i is drawn from `generators[i]`."""
    if len(generators) != shape[0]:
        raise ValueError(f"need one generator per item: batch {shape[0]}, got {len(generators)} generators")
    items = [torch.randn(tuple(shape[1:]), generator=g, device=g.device, dtype=dtype) for g in generators]
    return torch.stack(items).to(device)


def randn_like_per_item(x: Tensor, generators: Sequence[torch.Generator]) -> Tensor:
    """`randn_per_item` with the shape, device and dtype of `x`."""
    return randn_per_item(x.shape, generators, device=x.device, dtype=x.dtype)
