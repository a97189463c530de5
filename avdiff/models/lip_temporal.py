"""A Conformer over per-frame lip features, translation-equivariant by construction.

Each block (Gulati et al. 2020): half feed-forward, self-attention, convolution module, half
feed-forward, LayerNorm. There is no absolute positional encoding: attention gets a learned
bias per head and clipped relative distance (j - i), and the convolution module sees order
locally. Masked frames (padding, frames to ignore) are excluded as attention keys, zeroed
before every temporal convolution, and normalised with LayerNorm (per frame, never across the
batch). So shifting a clip in time, with masked frames in front, shifts the output exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim * mult), nn.SiLU(), nn.Dropout(dropout),
                                 nn.Linear(dim * mult, dim), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class RelativeSelfAttention(nn.Module):
    """Multi-head self-attention with a learned bias per head and clipped relative distance."""

    def __init__(self, dim: int, heads: int, max_distance: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"model dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.max_distance = max_distance
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.relative_bias = nn.Parameter(torch.zeros(heads, 2 * max_distance + 1))
        self.dropout = dropout

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        batch, frames, dim = x.shape
        q, k, v = self.qkv(self.norm(x)).view(batch, frames, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        position = torch.arange(frames, device=x.device)
        distance = (position[None, :] - position[:, None]).clamp(-self.max_distance, self.max_distance)
        bias = self.relative_bias[:, distance + self.max_distance]  # (heads, T, T)
        keep = mask[:, None, None, :]  # keys to attend to
        bias = bias[None].to(q.dtype).masked_fill(~keep, float("-inf"))
        # A query with no key at all (fully masked item) would give NaN; give it its own frame.
        bias = torch.where(keep.any(-1, keepdim=True), bias, torch.zeros_like(bias))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.out(out.transpose(1, 2).reshape(batch, frames, dim))


class ConvModule(nn.Module):
    """Pointwise conv + GLU, depthwise temporal conv, LayerNorm, SiLU, pointwise conv."""

    def __init__(self, dim: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError("the depthwise kernel size must be odd (centred)")
        self.norm = nn.LayerNorm(dim)
        self.pointwise_in = nn.Linear(dim, 2 * dim)
        self.depthwise = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.mid_norm = nn.LayerNorm(dim)
        self.pointwise_out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = F.glu(self.pointwise_in(self.norm(x)), dim=-1)
        x = x * mask[..., None].to(x.dtype)
        x = self.depthwise(x.transpose(1, 2)).transpose(1, 2)
        x = self.pointwise_out(F.silu(self.mid_norm(x)))
        return self.dropout(x)


class ConformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, ff_mult: int, kernel_size: int, max_distance: int,
                 dropout: float) -> None:
        super().__init__()
        self.ff1 = FeedForward(dim, ff_mult, dropout)
        self.attention = RelativeSelfAttention(dim, heads, max_distance, dropout)
        self.conv = ConvModule(dim, kernel_size, dropout)
        self.ff2 = FeedForward(dim, ff_mult, dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + 0.5 * self.ff1(x)
        x = x + self.attention(x, mask)
        x = x + self.conv(x, mask)
        x = x + 0.5 * self.ff2(x)
        return self.norm(x) * mask[..., None].to(x.dtype)


class Conformer(nn.Module):
    """A stack of Conformer blocks over (B, T, dim) with a (B, T) keep mask."""

    def __init__(self, dim: int, layers: int, heads: int, ff_mult: int, kernel_size: int,
                 max_distance: int, dropout: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(ConformerBlock(dim, heads, ff_mult, kernel_size, max_distance, dropout)
                                    for _ in range(layers))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x * mask[..., None].to(x.dtype)
        for block in self.blocks:
            x = block(x, mask)
        return x
