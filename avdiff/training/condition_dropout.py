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
    """A copy of the (B, T) bool mask with dropped items and spans set to False."""
    batch, frames = cond_mask.shape
    draws = torch.rand(batch, 3, generator=generator)
    keep = cond_mask.clone()
    positions = torch.arange(frames, device=cond_mask.device)
    for i in range(batch):
        if draws[i, 0] < item_prob:
            keep[i] = False
        elif span_max_frames > 0 and draws[i, 1] < span_prob:
            length = int(torch.randint(1, min(span_max_frames, frames) + 1, (1,), generator=generator))
            start = int(draws[i, 2] * (frames - length + 1))
            keep[i] &= (positions < start) | (positions >= start + length)
    return keep
