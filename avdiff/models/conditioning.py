"""Frame-aligned conditioning for the score UNet: null embedding, masking and per-level FiLM.

The condition is a sequence (B, D, T) at the STFT frame rate (lip embeddings upsampled x5).
Frames whose mask is False (no face, dropped for classifier-free guidance, padding) are
replaced by one learned null vector, so "no condition" is a value the network learns, and a
fully masked condition is exactly the null condition. A small temporal trunk mixes
neighbouring frames; each UNet resolution then gets the trunk output average-pooled to its
own frame rate and applied as a per-frame scale and shift (FiLM), broadcast over frequency.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConditionTrunk(nn.Module):
    """(B, D, T) condition + (B, T) mask -> (B, H, T) features, null embedding where masked."""

    def __init__(self, cond_channels: int, hidden_channels: int) -> None:
        super().__init__()
        self.cond_channels = cond_channels
        self.null_embedding = nn.Parameter(torch.randn(cond_channels) * 0.5)
        self.layers = nn.Sequential(
            nn.Conv1d(cond_channels, hidden_channels, kernel_size=3, padding=1),
            nn.SiLU(),
            nn.Conv1d(hidden_channels, hidden_channels, kernel_size=3, padding=1),
            nn.SiLU(),
        )

    def apply_null(self, cond: Tensor | None, cond_mask: Tensor | None, batch: int, frames: int) -> Tensor:
        """The condition with masked frames (or everything, when `cond` is None) set to null."""
        null = self.null_embedding.view(1, -1, 1)
        if cond is None:
            return null.expand(batch, -1, frames)
        if cond.shape != (batch, self.cond_channels, frames):
            raise ValueError(
                f"condition must be (batch, {self.cond_channels}, frames) = "
                f"({batch}, {self.cond_channels}, {frames}), got {tuple(cond.shape)}"
            )
        if cond_mask is None:
            return cond
        if cond_mask.shape != (batch, frames):
            raise ValueError(f"cond_mask must be (batch, frames) = ({batch}, {frames}), got {tuple(cond_mask.shape)}")
        return torch.where(cond_mask[:, None, :].bool(), cond, null.to(cond.dtype))

    def features(self, nulled: Tensor) -> Tensor:
        """The trunk's (B, H, T) features of a condition whose masked frames are already null."""
        return self.layers(nulled.to(self.null_embedding.dtype))

    def forward(self, cond: Tensor | None, cond_mask: Tensor | None, batch: int, frames: int) -> Tensor:
        return self.features(self.apply_null(cond, cond_mask, batch, frames))


class FrameFiLM(nn.Module):
    """Per-frame scale and shift of a (B, C, F, T_level) feature map from (B, H, T) features."""

    def __init__(self, hidden_channels: int, channels: int, downsample: int) -> None:
        super().__init__()
        self.downsample = downsample
        self.proj = nn.Conv1d(hidden_channels, 2 * channels, kernel_size=1)

    def forward(self, hidden: Tensor, features: Tensor) -> Tensor:
        if self.downsample > 1:
            features = F.avg_pool1d(features, self.downsample, self.downsample)
        if features.shape[-1] != hidden.shape[-1]:
            raise ValueError(f"condition has {features.shape[-1]} frames at this level, features {hidden.shape[-1]}")
        scale, shift = self.proj(features).unsqueeze(2).chunk(2, dim=1)
        return hidden * (1 + scale) + shift


class SpectralMap(nn.Module):
    """(B, H, T) condition features -> (B, S, F, T) maps over frequency, one column per frame.

    Predicted at `bins` frequency points and linearly interpolated to the input's F bins, so
    the size does not tie the network to one STFT size. Gives the condition a direct, frame-
    aligned way to describe the spectrum (e.g. where the energy is) at the input resolution.
    """

    def __init__(self, hidden_channels: int, channels: int, bins: int) -> None:
        super().__init__()
        self.channels, self.bins = channels, bins
        self.proj = nn.Conv1d(hidden_channels, channels * bins, kernel_size=1) if channels else None

    def forward(self, features: Tensor, bins: int, padded_bins: int) -> Tensor:
        batch, _, frames = features.shape
        if self.proj is None:
            return features.new_zeros(batch, 0, padded_bins, frames)
        maps = self.proj(features).view(batch, self.channels, self.bins, frames)
        maps = F.interpolate(maps, size=(bins, frames), mode="bilinear", align_corners=True)
        return F.pad(maps, (0, 0, 0, padded_bins - bins))
