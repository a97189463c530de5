"""Condition dropout: one network learns the audio-visual prior, the audio-only prior and the
unconditional model used by classifier-free guidance.

A whole item's condition is dropped with probability `item_prob` (-> null embedding at every
frame); otherwise, with probability `span_prob`, one random span of up to `span_max_frames`
STFT frames is dropped, so the network also learns to bridge frames where the face is missing.
"""

from __future__ import annotations

import torch
from torch import Tensor


def drop_condition(
    cond_mask: Tensor,
    generator: torch.Generator,
    item_prob: float,
    span_prob: float,
    span_max_frames: int,
) -> Tensor:
    """A copy of the (B, T) bool mask with dropped items and spans set to False.

    The draws come from the (CPU) `generator`; the mask stays on its device: only the (B, 2)
    dropped ranges travel to it."""
    batch, frames = cond_mask.shape
    draws = torch.rand(batch, 3, generator=generator)
    ranges = []
    for i in range(batch):
        if draws[i, 0] < item_prob:
            ranges.append((0, frames))
        elif span_max_frames > 0 and draws[i, 1] < span_prob:
            length = int(torch.randint(1, min(span_max_frames, frames) + 1, (1,), generator=generator))
            start = int(draws[i, 2] * (frames - length + 1))
            ranges.append((start, start + length))
        else:
            ranges.append((0, 0))
    bounds = torch.tensor(ranges, device=cond_mask.device).unsqueeze(-1)  # (B, 2, 1)
    positions = torch.arange(frames, device=cond_mask.device)
    return cond_mask & ((positions < bounds[:, 0]) | (positions >= bounds[:, 1]))
