"""The score network: a UNet on the 2-channel (real, imag) compressed spectrogram.

Built from diffusers' UNet blocks (`DownBlock2D`/`AttnDownBlock2D`, `UNetMidBlock2D`,
`UpBlock2D`/`AttnUpBlock2D`) with a Gaussian-Fourier noise-level embedding, and
frame-aligned conditioning (`avdiff.models.conditioning`): per-frame FiLM at every resolution
of the encoder, the middle and the decoder, plus per-frame spectral maps predicted from the
condition and fed in beside the input, so the lips can say directly which frequencies are
active, and (with `cond_envelope_bands`) the condition's predicted log-mel envelope drawn on
the STFT bins as one more input channel. Fixed frequency-position channels tell the network
where each bin lies. Frequency runs along the height, time along the width.
Inputs of any size are zero-padded to the UNet's multiple and the output cropped back exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avdiff.audio.envelope import envelope_image
from avdiff.config.loader import to_dict
from avdiff.config.schema import ScoreModelConfig, UNetConfig
from avdiff.diffusers_parts import (
    ConfigMixin, GaussianFourierProjection, TimestepEmbedding, UNetMidBlock2D, get_down_block, get_up_block,
    register_to_config,
)
from avdiff.models.backbones import Backbone
from avdiff.models.conditioning import ConditionTrunk, FrameFiLM, SpectralMap
from avdiff.models.loading import LeanModelMixin
from avdiff.timegrid import SAMPLE_RATE


_UNET = UNetConfig()


@dataclass(frozen=True)
class _BlockSettings:
    """What every UNet block of one network shares."""

    layers_per_block: int
    attention_head_dim: int
    temb_channels: int
    cond_hidden_channels: int
    common: dict[str, Any]


class ScoreUNet(LeanModelMixin, ConfigMixin):
    """F(c_in x, c_noise, cond, cond_mask) -> (B, 2, F, T); see `avdiff.diffusion.Denoiser`."""

    @register_to_config
    def __init__(
        self,
        in_channels: int = 2,
        out_channels: int = 2,
        block_out_channels: Sequence[int] = _UNET.block_out_channels,
        layers_per_block: int = _UNET.layers_per_block,
        attention_levels: Sequence[bool] = _UNET.attention_levels,
        attention_head_dim: int = _UNET.attention_head_dim,
        norm_num_groups: int = _UNET.norm_num_groups,
        cond_channels: int = ScoreModelConfig.cond_channels,
        cond_hidden_channels: int = _UNET.cond_hidden_channels,
        time_embedding_scale: float = _UNET.time_embedding_scale,
        dropout: float = _UNET.dropout,
        frequency_channels: int = _UNET.frequency_channels,
        cond_spectral_channels: int = _UNET.cond_spectral_channels,
        cond_spectral_bins: int = _UNET.cond_spectral_bins,
        cond_envelope_bands: int = _UNET.cond_envelope_bands,
    ) -> None:
        """Defaults are the config schema's (`UNetConfig`), so they are written once."""
        super().__init__()
        if len(attention_levels) != len(block_out_channels):
            raise ValueError("attention_levels needs one flag per entry of block_out_channels")
        if not 0 <= cond_envelope_bands <= cond_channels:
            raise ValueError(f"cond_envelope_bands ({cond_envelope_bands}) must be in 0 .. cond_channels ({cond_channels})")
        channels = list(block_out_channels)
        temb_channels = 4 * channels[0]
        blocks = _BlockSettings(layers_per_block, attention_head_dim, temb_channels, cond_hidden_channels,
                                dict(resnet_eps=1e-6, resnet_act_fn="silu", resnet_groups=norm_num_groups,
                                     dropout=dropout))
        self.time_proj = GaussianFourierProjection(
            channels[0], scale=time_embedding_scale, log=False, flip_sin_to_cos=True
        )
        self.time_embedding = TimestepEmbedding(2 * channels[0], temb_channels)
        envelope_channels = 1 if cond_envelope_bands else 0
        self.conv_in = nn.Conv2d(in_channels + frequency_channels + cond_spectral_channels + envelope_channels,
                                 channels[0], kernel_size=3, padding=1)
        self.condition = ConditionTrunk(cond_channels, cond_hidden_channels)
        self.spectral_map = SpectralMap(cond_hidden_channels, cond_spectral_channels, cond_spectral_bins)
        self.down_blocks, self.down_film = self._encoder(channels, list(attention_levels), blocks)
        self.mid_film = FrameFiLM(cond_hidden_channels, channels[-1], 2 ** (len(channels) - 1))
        self.mid_block = UNetMidBlock2D(in_channels=channels[-1], temb_channels=temb_channels,
                                        attention_head_dim=attention_head_dim, **blocks.common)
        self.up_blocks, self.up_film = self._decoder(channels, list(attention_levels), blocks)
        self.norm_out = nn.GroupNorm(norm_num_groups, channels[0], eps=1e-6)
        self.conv_out = nn.Conv2d(channels[0], out_channels, kernel_size=3, padding=1)

    @staticmethod
    def _encoder(channels: list[int], attention: list[bool], blocks: "_BlockSettings"
                 ) -> tuple[nn.ModuleList, nn.ModuleList]:
        """The down path: per level, FiLM by the condition then a (attention) down block."""
        down_blocks, down_film = nn.ModuleList(), nn.ModuleList()
        previous = channels[0]
        for level, (width, attend) in enumerate(zip(channels, attention)):
            down_film.append(FrameFiLM(blocks.cond_hidden_channels, previous, 2**level))
            down_blocks.append(get_down_block(
                "AttnDownBlock2D" if attend else "DownBlock2D", num_layers=blocks.layers_per_block,
                in_channels=previous, out_channels=width, temb_channels=blocks.temb_channels,
                add_downsample=level < len(channels) - 1, attention_head_dim=blocks.attention_head_dim,
                downsample_padding=1, **blocks.common))
            previous = width
        return down_blocks, down_film

    @staticmethod
    def _decoder(channels: list[int], attention: list[bool], blocks: "_BlockSettings"
                 ) -> tuple[nn.ModuleList, nn.ModuleList]:
        """The up path, mirroring the encoder with one more resnet layer per level."""
        up_blocks, up_film = nn.ModuleList(), nn.ModuleList()
        num_levels, reversed_channels, previous = len(channels), channels[::-1], channels[-1]
        for index, (width, attend) in enumerate(zip(reversed_channels, attention[::-1])):
            level = num_levels - 1 - index
            skip_channels = reversed_channels[min(index + 1, num_levels - 1)]
            up_film.append(FrameFiLM(blocks.cond_hidden_channels, previous, 2**level))
            up_blocks.append(get_up_block(
                "AttnUpBlock2D" if attend else "UpBlock2D", num_layers=blocks.layers_per_block + 1,
                in_channels=skip_channels, out_channels=width, prev_output_channel=previous,
                temb_channels=blocks.temb_channels, add_upsample=level > 0,
                attention_head_dim=blocks.attention_head_dim, resolution_idx=index, **blocks.common))
            previous = width
        return up_blocks, up_film

    @classmethod
    def from_avdiff_config(cls, config: ScoreModelConfig) -> "ScoreUNet":
        """Build from the `score_model` section of an avdiff YAML config (its `unet` settings)."""
        return cls(cond_channels=config.cond_channels, **to_dict(config.unet))

    @property
    def size_multiple(self) -> int:
        """Height and width are padded to a multiple of this (2 ** number of downsamplings)."""
        return 2 ** (len(self.config.block_out_channels) - 1)

    def frequency_features(self, batch: int, bins: int, padded_bins: int, frames: int, like: Tensor) -> Tensor:
        """Fixed channels cos(pi k f / bins), k = 1..K: where each bin sits on the frequency axis.

        Convolutions are translation invariant; speech is not (formants and pitch live at given
        frequencies), and with no noisy input to copy from (video-to-speech) the network needs
        to know the absolute frequency of every bin. Padded bins continue the same functions.
        """
        count = self.config.frequency_channels
        position = torch.arange(padded_bins, device=like.device, dtype=torch.float32) / max(bins - 1, 1)
        order = torch.arange(1, count + 1, device=like.device, dtype=torch.float32)
        features = torch.cos(torch.pi * order[:, None] * position[None, :])
        return features[None, :, :, None].expand(batch, count, padded_bins, frames).to(like.dtype)

    def envelope_channel(self, nulled: Tensor, bins: int) -> Tensor:
        """(B, 1, bins, T) image of the condition's log-mel envelope channels on the STFT bins
        (`avdiff.audio.envelope`), or (B, 0, bins, T) when the condition carries none."""
        bands = self.config.cond_envelope_bands
        if not bands:
            return nulled.new_zeros(nulled.shape[0], 0, bins, nulled.shape[-1])
        return envelope_image(nulled[:, :bands], bins, SAMPLE_RATE)

    def forward(
        self,
        sample: Tensor,
        noise_level: Tensor,
        cond: Tensor | None = None,
        cond_mask: Tensor | None = None,
    ) -> Tensor:
        """sample (B, 2, F, T), noise_level c_noise (B,), cond (B, D, T), cond_mask (B, T) bool."""
        height, width = sample.shape[-2:]
        return self.body(*self.body_inputs(sample, noise_level, cond, cond_mask))[:, :, :height, :width]

    def body_inputs(self, sample: Tensor, noise_level: Tensor, cond: Tensor | None = None,
                    cond_mask: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """What `body` reads, padded to the UNet's multiple: the input channels (B, C, F', T'), the
        condition's per-frame features (B, H, T') and the noise-level embedding (B, E).

        Every shape-dependent step (padding, the fixed frequency channels, the condition's maps)
        happens here, so `body` is one fixed graph over inputs of any padded size: what an
        exported backend (`avdiff.inference`) runs in its place."""
        batch, _, height, width = sample.shape
        nulled = self.condition.apply_null(cond, cond_mask, batch, width)
        cond_features = self.condition.features(nulled)
        envelope = self.envelope_channel(nulled, height)

        multiple = self.size_multiple
        pad_h, pad_w = -height % multiple, -width % multiple
        if pad_h or pad_w:
            sample = F.pad(sample, (0, pad_w, 0, pad_h))
            # Padded frames carry the trunk output of the null embedding (no information).
            null_features = self.condition(None, None, batch, pad_w) if pad_w else None
            cond_features = torch.cat([cond_features, null_features], dim=-1) if pad_w else cond_features

        temb = self.time_embedding(self.time_proj(noise_level.reshape(-1).to(torch.float32)).to(self.dtype))
        inputs = torch.cat([
            sample,
            self.frequency_features(batch, height, sample.shape[-2], sample.shape[-1], sample),
            self.spectral_map(cond_features, height, sample.shape[-2]).to(sample.dtype),
            F.pad(envelope, (0, pad_w, 0, pad_h)).to(sample.dtype),
        ], 1)
        return inputs.to(self.dtype), cond_features, temb

    def body(self, inputs: Tensor, cond_features: Tensor, temb: Tensor) -> Tensor:
        """The UNet proper on `body_inputs`' padded tensors -> (B, 2, F', T')."""
        hidden = self.conv_in(inputs)
        skips: tuple[Tensor, ...] = (hidden,)
        for film, block in zip(self.down_film, self.down_blocks):
            hidden, outputs = block(film(hidden, cond_features), temb)
            skips += outputs

        hidden = self.mid_block(self.mid_film(hidden, cond_features), temb)

        for film, block in zip(self.up_film, self.up_blocks):
            block_skips = skips[-len(block.resnets) :]
            skips = skips[: -len(block.resnets)]
            hidden = block(film(hidden, cond_features), block_skips, temb)

        return self.conv_out(F.silu(self.norm_out(hidden)))


# Its entry in the registry of score networks (avdiff.models.backbones.BACKBONES, as "unet"): built as
# ScoreUNet(cond_channels=..., **settings) with its settings read from the schema's `score_model.unet`.
UNET_BACKBONE = Backbone(ScoreUNet, UNetConfig, section="unet")
