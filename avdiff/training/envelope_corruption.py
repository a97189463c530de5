"""The lips' envelope as the score network reads it in training: corrupted the way the lips err.

A lip encoder trained first (the two-stage recipe) predicts the envelope of its training
sentences better than that of new ones. The score network trained on its output would learn to
trust an envelope more exact than it will get; adding noise (`training.envelope_noise_std`) and
blurring clips over 3 video frames (`training.envelope_blur_prob`, the lips' typical error: late,
smeared transitions) teaches it to read an envelope that errs. Training only: the sampler's
condition never passes through here, and the envelope loss scores the uncorrupted prediction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def corrupt_envelope(embeddings: Tensor, bands: int, noise_std: float, blur_prob: float,
                     generator: torch.Generator) -> Tensor:
    """(B, T_v, D) lip embeddings with the first `bands` channels corrupted; the rest untouched.
    Draws come from the (CPU) `generator`; nothing changes when both settings are 0."""
    if not bands or (noise_std == 0 and blur_prob == 0):
        return embeddings
    envelope = embeddings[..., :bands]
    if blur_prob > 0:
        blurred = F.avg_pool1d(envelope.transpose(1, 2), 3, stride=1, padding=1, count_include_pad=False)
        chosen = (torch.rand(envelope.shape[0], generator=generator) < blur_prob).to(envelope.device)
        envelope = torch.where(chosen[:, None, None], blurred.transpose(1, 2), envelope)
    if noise_std > 0:
        noise = torch.randn(envelope.shape, generator=generator).to(device=envelope.device, dtype=envelope.dtype)
        envelope = envelope + noise_std * noise
    return torch.cat([envelope, embeddings[..., bands:]], dim=-1)
