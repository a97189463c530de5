"""The jointly trained pair: lip encoder -> frame-aligned condition -> score network.

`AVDiffusionModel.forward` computes the training loss for one batch of aligned crops, so
DistributedDataParallel sees one forward per step over both networks.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from avdiff.audio.envelope import log_mel_envelope, per_video_frame
from avdiff.audio.spectrogram import SpectrogramTransform
from avdiff.config.schema import AVDiffConfig, LipEncoderConfig, TrainingConfig
from avdiff.diffusion.denoiser import Denoiser
from avdiff.diffusion.formulation import DiffusionFormulation
from avdiff.diffusion.loss import DenoisingScoreMatchingLoss, LossOutput
from avdiff.diffusion.samplers import sampler_options
from avdiff.errors import ConfigError
from avdiff.models.backbones import BACKBONES, build_backbone
from avdiff.models.lip_encoder import LipEncoder, lips_to_condition
from avdiff.timegrid import STFT_FRAMES_PER_VIDEO_FRAME
from avdiff.training.condition_dropout import drop_condition


def check_registered(config: AVDiffConfig) -> None:
    """A ConfigError naming the key when the config's sampler or backbone is not registered or the
    sampler's options do not fit it (the schema cannot know what the registries hold)."""
    if config.score_model.backbone not in BACKBONES:
        raise ConfigError(f"score_model.backbone: unknown backbone {config.score_model.backbone!r}; "
                          f"registered: {', '.join(sorted(BACKBONES))}")
    try:
        sampler_options(config.sampler.name, config.sampler.options)
    except ValueError as error:
        raise ConfigError(f"sampler: {error}") from error


def build_lip_encoder(config: LipEncoderConfig) -> LipEncoder:
    """A lip encoder from its config section, with a pretrained front-end if one is named."""
    encoder = LipEncoder.from_preset(config.preset, output_dim=config.output_dim, envelope_bands=config.envelope_bands)
    if config.pretrained_frontend:
        encoder.load_frontend_weights(config.pretrained_frontend, freeze=config.freeze_frontend)
    elif config.freeze_frontend:
        encoder.freeze_frontend(True)
    if not config.train:
        encoder.requires_grad_(False)
    return encoder


class AVDiffusionModel(nn.Module):
    """Lip encoder + preconditioned score network; `forward` returns the DSM loss of a batch."""

    def __init__(
        self,
        lip_encoder: LipEncoder,
        score_model: nn.Module,
        formulation: DiffusionFormulation,
        transform: SpectrogramTransform,
        training: TrainingConfig | None = None,
    ) -> None:
        super().__init__()
        self.lip_encoder = lip_encoder
        self.denoiser = Denoiser(score_model, formulation)
        self.transform = transform
        self.loss = DenoisingScoreMatchingLoss(formulation)
        self.training_config = training or TrainingConfig()

    @classmethod
    def from_config(cls, config: AVDiffConfig, formulation: DiffusionFormulation) -> "AVDiffusionModel":
        """The model a config describes, after checking the names it gives the registries."""
        check_registered(config)
        return cls(
            build_lip_encoder(config.lip_encoder),
            build_backbone(config.score_model),
            formulation,
            SpectrogramTransform(config.spectrogram),
            config.training,
        )

    @property
    def score_model(self) -> nn.Module:
        return self.denoiser.network

    def encode_lips(self, video: Tensor, video_valid: Tensor, face_ok: Tensor) -> Tensor | None:
        """Mouth crops (B, T_v, H, W) -> lip embeddings (B, T_v, D), or None when a frozen encoder
        has no usable face to look at (audio-only speech: the condition would be all null anyway).

        A trained encoder always runs, so every process of a distributed run uses the same
        parameters. With no valid frame at all the front-end would see an empty batch and its
        parameters would drop out of the graph (a distributed run then deadlocks): it encodes the
        blank frames; the condition mask still turns them into the null condition."""
        usable = face_ok & video_valid
        if not usable.any() and not any(p.requires_grad for p in self.lip_encoder.parameters()):
            return None
        frame_mask = video_valid if video_valid.any() else torch.ones_like(video_valid)
        return self.lip_encoder(video, frame_mask=frame_mask)

    def condition(self, video: Tensor, video_valid: Tensor, face_ok: Tensor, num_frames: int,
                  embeddings: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Mouth crops -> condition (B, D, T) and its (B, T) validity mask; `embeddings` when
        `encode_lips` already ran on them."""
        usable = face_ok & video_valid
        if embeddings is None:
            embeddings = self.encode_lips(video, video_valid, face_ok)
        if embeddings is None:
            batch, dim = usable.shape[0], self.denoiser.network.config.cond_channels
            return video.new_zeros((batch, dim, num_frames), dtype=torch.float32), usable.new_zeros((batch, num_frames))
        return lips_to_condition(embeddings, usable, num_frames)

    def envelope_loss(self, spec: Tensor, embeddings: Tensor | None, usable: Tensor, frame_mask: Tensor) -> Tensor | None:
        """Mean squared error between the lips' envelope channels and the speech's log-mel envelope
        at every usable video frame (`avdiff.audio.envelope`); None when the encoder predicts none."""
        bands = self.lip_encoder.config.envelope_bands
        if not bands or embeddings is None:
            return None
        power = self.transform.decompress(self.transform.to_complex(spec)).abs().square()
        target = log_mel_envelope(power, bands, self.transform.config.sample_rate)
        target, coverage = per_video_frame(target, frame_mask, embeddings.shape[1], STFT_FRAMES_PER_VIDEO_FRAME)
        weight = coverage * usable.to(coverage.dtype)
        error = (embeddings[..., :bands].float() - target.transpose(1, 2)).square().mean(-1)
        return (error * weight).sum() / weight.sum().clamp_min(1.0)

    def forward(
        self,
        audio: Tensor,
        video: Tensor,
        video_valid: Tensor,
        face_ok: Tensor,
        frame_mask: Tensor,
        generator: torch.Generator,
        drop_conditions: bool = True,
    ) -> LossOutput:
        """The loss of one batch; `generator` draws noise levels, noise and condition dropout.
        With lip envelope channels, their weighted error is added to `loss` and reported in
        `auxiliary["envelope"]`."""
        spec = self.transform.encode(audio)
        embeddings = self.encode_lips(video, video_valid, face_ok)
        cond, cond_mask = self.condition(video, video_valid, face_ok, spec.shape[-1], embeddings)
        if drop_conditions:
            config = self.training_config
            cond_mask = drop_condition(cond_mask, generator, config.cond_drop_prob, config.cond_span_drop_prob,
                                       config.cond_span_max_frames)
        out = self.loss(self.denoiser, spec, cond=cond, cond_mask=cond_mask, frame_mask=frame_mask, generator=generator)
        envelope = self.envelope_loss(spec, embeddings, face_ok & video_valid, frame_mask)
        if envelope is not None:
            out.loss = out.loss + self.training_config.envelope_loss_weight * envelope
            out.auxiliary["envelope"] = envelope.detach()
        return out
