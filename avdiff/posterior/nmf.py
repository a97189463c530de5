"""Noise power model V = W H (non-negative, low rank) fitted with Itakura-Saito multiplicative updates.

UDiffSE models the noise of a noisy spectrogram as zero-mean complex Gaussian with variance
V[f, t] = sum_k W[f, k] H[k, t] (rank 4). Given a power estimate P = |y - x|^2, the IS
divergence updates of Fevotte et al. lower D_IS(P | WH) monotonically; W's columns are then
normalised to sum 1 and H scaled to keep V.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

FLOOR = 1e-10


@dataclass
class NoiseModel:
    """W (B, F, K) and H (B, K, T); `variance` is their product (B, F, T)."""

    W: Tensor
    H: Tensor

    @property
    def variance(self) -> Tensor:
        return (self.W @ self.H).clamp_min(FLOOR)

    @classmethod
    def held(cls, variance: Tensor) -> "NoiseModel":
        """A model whose variance is `variance` (B, F, T) exactly (W the identity, H the variance):
        a noise estimate made elsewhere, held fixed (never refitted)."""
        batch, bins, _ = variance.shape
        eye = torch.eye(bins, dtype=variance.dtype, device=variance.device)
        return cls(eye.expand(batch, bins, bins).contiguous(), variance.clamp_min(FLOOR))

    @classmethod
    def initial(cls, power: Tensor, rank: int, generators: list[torch.Generator], scaled: bool = True) -> "NoiseModel":
        """Random positive factors from per-item generators.

        scaled: W's columns sum to 1 and mean(WH) = mean(power); otherwise W, H ~ U(0, 1) as
        UDiffSE's reference code draws them (whatever the input's scale).
        """
        batch, bins, frames = power.shape
        W = torch.stack([torch.rand(bins, rank, generator=g, device=g.device) for g in generators]).to(power)
        H = torch.stack([torch.rand(rank, frames, generator=g, device=g.device) for g in generators]).to(power)
        if not scaled:
            return cls(W.clamp_min(FLOOR), H.clamp_min(FLOOR))
        W, H = W + 0.1, H + 0.1
        W = W / W.sum(dim=1, keepdim=True)
        scale = power.mean(dim=(1, 2), keepdim=True) / (W @ H).mean(dim=(1, 2), keepdim=True)
        return cls(W, (H * scale).clamp_min(FLOOR))


def is_divergence(power: Tensor, variance: Tensor) -> Tensor:
    """Itakura-Saito divergence D(P | V) per item: sum P/V - log(P/V) - 1."""
    ratio = power.clamp_min(FLOOR) / variance.clamp_min(FLOOR)
    return (ratio - ratio.log() - 1).flatten(1).sum(1)


def fit_nmf(power: Tensor, model: NoiseModel, iterations: int, weights: Tensor | None = None) -> NoiseModel:
    """`iterations` rounds of IS multiplicative updates of W then H, starting from `model`.

    `weights` (B, F, T) in [0, 1]: the weighted IS divergence sum M (P/V - log(P/V) - 1) is lowered
    instead, so bins of weight 0 are left out of the fit (their V follows from W and H fitted
    elsewhere); a factor with no weighted bins at all is kept as it was.
    """
    power = power.to(torch.float32).clamp_min(FLOOR)
    W, H = model.W.to(power), model.H.to(power)
    if weights is not None:
        return _fit_weighted(power, W, H, iterations, weights.to(power))
    for _ in range(iterations):
        V = (W @ H).clamp_min(FLOOR)
        W = W * ((power / V**2) @ H.transpose(1, 2)) / ((1.0 / V) @ H.transpose(1, 2)).clamp_min(FLOOR)
        W = W.clamp_min(FLOOR)
        V = (W @ H).clamp_min(FLOOR)
        H = H * (W.transpose(1, 2) @ (power / V**2)) / (W.transpose(1, 2) @ (1.0 / V)).clamp_min(FLOOR)
        H = H.clamp_min(FLOOR)
        W, H = normalised(W, H)
    return NoiseModel(W, H)


def _fit_weighted(power: Tensor, W: Tensor, H: Tensor, iterations: int, weights: Tensor) -> NoiseModel:
    """Weighted IS updates: M P / V^2 over M / V; a ratio with no weight behind it stays 1."""
    def ratio(numerator: Tensor, denominator: Tensor) -> Tensor:
        return torch.where(denominator > FLOOR, numerator / denominator.clamp_min(FLOOR), torch.ones_like(numerator))

    for _ in range(iterations):
        V = (W @ H).clamp_min(FLOOR)
        Ht = H.transpose(1, 2)
        W = (W * ratio((weights * power / V**2) @ Ht, (weights / V) @ Ht)).clamp_min(FLOOR)
        V = (W @ H).clamp_min(FLOOR)
        Wt = W.transpose(1, 2)
        H = (H * ratio(Wt @ (weights * power / V**2), Wt @ (weights / V))).clamp_min(FLOOR)
        W, H = normalised(W, H)
    return NoiseModel(W, H)


def normalised(W: Tensor, H: Tensor) -> tuple[Tensor, Tensor]:
    """W's columns scaled to sum 1, H scaled to keep W H."""
    norm = W.sum(dim=1, keepdim=True)
    return W / norm, H * norm.transpose(1, 2)
