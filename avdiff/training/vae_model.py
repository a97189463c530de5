"""The speech VAE as the trainer trains it (training.objective vae): a frozen lip encoder -> the
lips' condition on the STFT grid -> the frame-wise VAE's negative ELBO on clean speech frames.

`AVVAEModel.forward` takes the batch the diffusion model takes and returns the same `LossOutput`,
so `avdiff train` (Accelerate, checkpoints, EMA, resume, validation with and without the lips)
trains it unchanged. The loss is per STFT bin: (IS reconstruction + kl_weight * KL) / F, averaged
over the batch's real frames. Condition dropout (training.cond_drop_prob, span drops) teaches the
same network its audio-only branch (the null embedding), which the switching VAE switches to.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from avdiff.audio.spectrogram import SpectrogramTransform
from avdiff.config.schema import AVDiffConfig, TrainingConfig, VAEConfig
from avdiff.diffusion.loss import LossOutput
from avdiff.models.lip_encoder import LipEncoder, lips_to_condition
from avdiff.models.speech_vae import SpeechVAE
from avdiff.training.condition_dropout import drop_condition
from avdiff.training.model import build_lip_encoder


def build_speech_vae(config: AVDiffConfig) -> SpeechVAE:
    """The VAE the config's `vae` section describes, on the config's STFT bins."""
    section: VAEConfig = config.vae
    return SpeechVAE(num_bins=SpectrogramTransform(config.spectrogram).num_bins, latent_dim=section.latent_dim,
                     hidden_dims=tuple(section.hidden_dims),
                     cond_dim=config.lip_encoder.output_dim if section.audio_visual else 0,
                     cond_hidden=section.cond_hidden)


class AVVAEModel(nn.Module):
    """Frozen lip encoder + speech VAE; `forward` returns the negative ELBO of a batch."""

    def __init__(self, lip_encoder: LipEncoder, vae: SpeechVAE, transform: SpectrogramTransform,
                 training: TrainingConfig | None = None, kl_weight: float = 1.0) -> None:
        super().__init__()
        self.lip_encoder = lip_encoder.requires_grad_(False)
        self.vae = vae
        self.transform = transform
        self.training_config = training or TrainingConfig()
        self.kl_weight = kl_weight

    @classmethod
    def from_config(cls, config: AVDiffConfig) -> "AVVAEModel":
        lip_encoder = build_lip_encoder(config.lip_encoder)
        return cls(lip_encoder, build_speech_vae(config), SpectrogramTransform(config.spectrogram), config.training,
                   config.vae.kl_weight)

    @property
    def network(self) -> nn.Module:
        """The trained network (the lip encoder stays frozen)."""
        return self.vae

    def condition(self, video: Tensor, video_valid: Tensor, face_ok: Tensor, frames: int,
                  generator: torch.Generator, drop: bool) -> tuple[Tensor | None, Tensor | None]:
        """The lips on the STFT grid (B, T, D) and their usable frames (B, T), condition-dropped in
        training; (None, None) for an audio-only VAE."""
        if not self.vae.audio_visual:
            return None, None
        usable = face_ok & video_valid
        with torch.no_grad():
            embeddings = self.lip_encoder(video, frame_mask=video_valid if video_valid.any() else None)
        cond, mask = lips_to_condition(embeddings.float(), usable, frames)
        if drop:
            config = self.training_config
            mask = drop_condition(mask, generator, config.cond_drop_prob, config.cond_span_drop_prob,
                                  config.cond_span_max_frames)
        return cond.transpose(1, 2), mask

    def forward(self, audio: Tensor, video: Tensor, video_valid: Tensor, face_ok: Tensor, frame_mask: Tensor,
                generator: torch.Generator, drop_conditions: bool = True) -> LossOutput:
        """The loss of one batch (`drop_conditions`: training's condition dropout); `per_item` is
        each clip's mean over its real frames, `auxiliary` the two ELBO terms per bin."""
        power = self.transform.stft(audio).abs().square().transpose(1, 2)  # (B, T, F)
        batch, frames, bins = power.shape
        cond, mask = self.condition(video, video_valid, face_ok, frames, generator, drop_conditions)
        rows = frame_mask.reshape(-1)
        features = None
        if cond is not None and mask is not None:
            features = self.vae.condition_features(cond.reshape(batch * frames, -1)[rows], mask.reshape(-1)[rows])
        noise = torch.randn(int(rows.sum()), self.vae.latent_dim, generator=generator).to(power.device)
        reconstruction, kl = self.vae(power.reshape(batch * frames, bins)[rows], features, noise)
        per_frame = (reconstruction + self.kl_weight * kl) / bins
        owner = torch.arange(batch, device=power.device).repeat_interleave(frames)[rows]
        counts = torch.bincount(owner, minlength=batch).clamp_min(1)
        per_item = torch.zeros(batch, device=power.device).index_add(0, owner, per_frame.detach()) / counts
        return LossOutput(per_frame.mean(), per_item, power.new_zeros(0),
                          {"reconstruction": reconstruction.detach().mean() / bins, "kl": kl.detach().mean() / bins})
