"""The jointly trained pair: lip encoder -> frame-aligned condition -> score network.

`AVDiffusionModel.forward` computes the training loss for one batch of aligned crops, so
DistributedDataParallel sees one forward per step over both networks.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from avdiff.audio.envelope import log_mel_envelope, per_video_frame, slow_part
from avdiff.audio.spectrogram import SpectrogramTransform
from avdiff.config.schema import AVDiffConfig, LipEncoderConfig, TrainingConfig
from avdiff.data.phone_labels import IGNORE_INDEX, PHONE_CLASSES
from avdiff.diffusion.denoiser import Denoiser
from avdiff.diffusion.formulation import DiffusionFormulation
from avdiff.diffusion.loss import DenoisingScoreMatchingLoss, LossOutput
from avdiff.diffusion.samplers import sampler_options
from avdiff.errors import ConfigError
from avdiff.models.backbones import BACKBONES, build_backbone
from avdiff.models.lip_encoder import LipEncoder, lip_encoder_folder, lips_to_condition
from avdiff.timegrid import STFT_FRAMES_PER_VIDEO_FRAME
from avdiff.training.condition_dropout import drop_condition
from avdiff.training.envelope_corruption import corrupt_envelope
from avdiff.training.guidance_distillation import Teacher, load_teacher, start_from_teacher
from avdiff.training.starting_weights import start_from_pretrained


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


def pretrained_lip_encoder(config: LipEncoderConfig) -> LipEncoder:
    """The trained encoder `config.pretrained` names (its folder, or a model folder's lip_encoder/),
    after checking that it gives what the config promises the score network."""
    folder = lip_encoder_folder(config.pretrained)
    if not (folder / "config.json").is_file():
        raise ConfigError(f"lip_encoder.pretrained: {config.pretrained} holds no lip encoder "
                          "(config.json, or lip_encoder/config.json in a model folder)")
    encoder = LipEncoder.from_pretrained(folder)
    for key in ("output_dim", "envelope_bands"):
        if encoder.config[key] != getattr(config, key):
            raise ConfigError(f"lip_encoder.pretrained: {folder} has {key} {encoder.config[key]}, "
                              f"the config says lip_encoder.{key}: {getattr(config, key)}")
    return encoder


def build_lip_encoder(config: LipEncoderConfig) -> LipEncoder:
    """A lip encoder from its config section: a new one of the preset, or the trained one it names;
    with a pretrained front-end if one is named."""
    if config.pretrained:
        encoder = pretrained_lip_encoder(config)
    else:
        encoder = LipEncoder.from_preset(config.preset, output_dim=config.output_dim,
                                         envelope_bands=config.envelope_bands)
    if config.pretrained_frontend:
        encoder.load_frontend_weights(config.pretrained_frontend, freeze=config.freeze_frontend)
    elif config.freeze_frontend:
        encoder.freeze_frontend(True)
    if not config.train:
        encoder.requires_grad_(False)
    return encoder.train()


class AVDiffusionModel(nn.Module):
    """Lip encoder + preconditioned score network; `forward` returns the DSM loss of a batch."""

    def __init__(
        self,
        lip_encoder: LipEncoder,
        score_model: nn.Module,
        formulation: DiffusionFormulation,
        transform: SpectrogramTransform,
        training: TrainingConfig | None = None,
        teacher: Teacher | None = None,
    ) -> None:
        super().__init__()
        self.lip_encoder = lip_encoder
        self.denoiser = Denoiser(score_model, formulation)
        self.transform = transform
        self.loss = DenoisingScoreMatchingLoss(formulation)
        self.training_config = training or TrainingConfig()
        # training.phone_loss_weight: names the phoneme of each frame from the lips' channels after the
        # envelope's; trained and checkpointed with the model, not exported (the score network reads the channels)
        bands, dim = lip_encoder.config.envelope_bands, lip_encoder.config.output_dim
        self.phone_head = (nn.Linear(dim - bands, len(PHONE_CLASSES))
                           if self.training_config.phone_loss_weight and bands < dim else None)
        # training.objective guided: in a tuple, so the frozen teacher is neither a parameter (optimised,
        # checkpointed, synchronised) nor part of the exported model
        self.teacher_holder: tuple[Teacher, ...] = (teacher,) if teacher is not None else ()

    @classmethod
    def from_config(cls, config: AVDiffConfig, formulation: DiffusionFormulation) -> "AVDiffusionModel":
        """The model a config describes, after checking the names it gives the registries."""
        check_registered(config)
        teacher = load_teacher(config) if config.training.objective == "guided" else None
        # first: the seed's draws stay in their order; a student reads its teacher's frozen lips
        lip_encoder = build_lip_encoder(config.lip_encoder) if teacher is None else teacher.lip_encoder
        score_model = build_backbone(config.score_model)
        if config.training.objective == "lips":  # the first stage: only the lips train
            score_model.requires_grad_(False)
        if teacher is not None:
            start_from_teacher(score_model, formulation, teacher)
        elif config.score_model.pretrained:
            start_from_pretrained(score_model, formulation, config)
        return cls(lip_encoder, score_model, formulation, SpectrogramTransform(config.spectrogram), config.training,
                   teacher)

    @property
    def score_model(self) -> nn.Module:
        return self.denoiser.network

    @property
    def network(self) -> nn.Module:
        """The network trained besides the lips (AVVAEModel's is its VAE)."""
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

    def envelope_target(self, spec: Tensor, frame_mask: Tensor, video_frames: int) -> tuple[Tensor, Tensor]:
        """The speech's log-mel envelope (`avdiff.audio.envelope`) per video frame, (B, T_v, bands), and
        each frame's share of covered STFT frames, (B, T_v)."""
        bands = self.lip_encoder.config.envelope_bands
        power = self.transform.decompress(self.transform.to_complex(spec)).abs().square()
        target = log_mel_envelope(power, bands, self.transform.config.sample_rate)
        target, coverage = per_video_frame(target, frame_mask, video_frames, STFT_FRAMES_PER_VIDEO_FRAME)
        return target.transpose(1, 2), coverage

    def envelope_errors(self, spec: Tensor, embeddings: Tensor, usable: Tensor, frame_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Squared error between the lips' envelope channels and the speech's envelope at each video
        frame, mean over bands, plus training.envelope_fast_weight times that of its fast part (the
        error minus `slow_part`), and each frame's weight (its share of covered STFT frames, 0 where
        the face is not usable): two (B, T_v) tensors."""
        target, coverage = self.envelope_target(spec, frame_mask, embeddings.shape[1])
        difference = embeddings[..., : target.shape[-1]].float() - target
        error = difference.square().mean(-1)
        fast_weight = self.training_config.envelope_fast_weight
        if fast_weight:
            error = error + fast_weight * (difference - slow_part(difference)).square().mean(-1)
        return error, coverage * usable.to(coverage.dtype)

    def envelope_loss(self, spec: Tensor, embeddings: Tensor | None, usable: Tensor, frame_mask: Tensor) -> Tensor | None:
        """The envelope error over every usable video frame of the batch; None when the encoder predicts none."""
        if not self.lip_encoder.config.envelope_bands or embeddings is None:
            return None
        error, weight = self.envelope_errors(spec, embeddings, usable, frame_mask)
        return (error * weight).sum() / weight.sum().clamp_min(1.0)

    def phone_loss(self, embeddings: Tensor | None, phones: Tensor | None, usable: Tensor) -> Tensor | None:
        """Cross-entropy of the phoneme at each usable video frame (`phones`, (B, T_v), IGNORE_INDEX where
        unknown) read from the lips' channels after the envelope's; None without a phone head or labels."""
        if self.phone_head is None or phones is None or embeddings is None:
            return None
        logits = self.phone_head(embeddings[..., self.lip_encoder.config.envelope_bands :].float())
        target = phones.to(logits.device).masked_fill(~usable, IGNORE_INDEX)
        if not (target != IGNORE_INDEX).any():  # nothing to name: a zero that keeps the head in the graph
            return logits.sum() * 0.0
        return torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, ignore_index=IGNORE_INDEX)

    def lips_only_loss(self, spec: Tensor, embeddings: Tensor | None, usable: Tensor, frame_mask: Tensor) -> LossOutput:
        """training.objective 'lips': the envelope error alone (`per_item`: each clip's; no noise levels)."""
        if embeddings is None:  # no usable face for a frozen copy (the EMA's, in validation): nothing to score
            nothing = spec.new_zeros(spec.shape[0])
            return LossOutput(nothing.sum(), nothing, spec.new_zeros(0), {"envelope": nothing.sum()})
        error, weight = self.envelope_errors(spec, embeddings, usable, frame_mask)
        loss = (error * weight).sum() / weight.sum().clamp_min(1.0)
        per_item = (error * weight).sum(-1) / weight.sum(-1).clamp_min(1.0)
        return LossOutput(loss, per_item, spec.new_zeros(0), {"envelope": loss.detach()})

    def forward(
        self,
        audio: Tensor,
        video: Tensor,
        video_valid: Tensor,
        face_ok: Tensor,
        frame_mask: Tensor,
        generator: torch.Generator,
        drop_conditions: bool = True,
        phones: Tensor | None = None,
    ) -> LossOutput:
        """The loss of one batch; `generator` draws noise levels, noise, condition dropout and the
        envelope's corruption (`drop_conditions`: training). With lip envelope channels, their
        weighted error is added to `loss` and reported in `auxiliary["envelope"]`; with
        training.objective 'lips' it is the whole loss (`lips_only_loss`); with 'guided' the
        denoiser's target is the teacher's guided estimate for the same lips and mask. With a phone head and
        `phones` (the phoneme per video frame), training.phone_loss_weight times `phone_loss` is added too
        (`auxiliary["phones"]`)."""
        spec = self.transform.encode(audio)
        embeddings = self.encode_lips(video, video_valid, face_ok)
        out = (self.lips_only_loss(spec, embeddings, face_ok & video_valid, frame_mask)
               if self.training_config.objective == "lips"
               else self.denoising_loss(spec, embeddings, video, video_valid, face_ok, frame_mask, generator,
                                        drop_conditions))
        phone = self.phone_loss(embeddings, phones, face_ok & video_valid)
        if phone is not None:
            out.loss = out.loss + self.training_config.phone_loss_weight * phone
            out.auxiliary["phones"] = phone.detach()
        return out

    def denoising_loss(self, spec: Tensor, embeddings: Tensor | None, video: Tensor, video_valid: Tensor,
                       face_ok: Tensor, frame_mask: Tensor, generator: torch.Generator,
                       drop_conditions: bool) -> LossOutput:
        """The denoising loss of the spectrogram `spec` on the lips' condition, plus the lips' envelope loss
        (objectives joint and guided; see `forward`)."""
        config = self.training_config
        read = embeddings
        if drop_conditions and embeddings is not None:  # training: the envelope as the lips err on new sentences
            read = corrupt_envelope(embeddings, self.lip_encoder.config.envelope_bands, config.envelope_noise_std,
                                    config.envelope_blur_prob, generator)
        cond, cond_mask = self.condition(video, video_valid, face_ok, spec.shape[-1], read)
        if drop_conditions:
            cond_mask = drop_condition(cond_mask, generator, config.cond_drop_prob, config.cond_span_drop_prob,
                                       config.cond_span_max_frames)
        target = self.teacher_holder[0].target(cond, cond_mask) if self.teacher_holder else None
        out = self.loss(self.denoiser, spec, cond=cond, cond_mask=cond_mask, frame_mask=frame_mask,
                        generator=generator, target=target)
        envelope = self.envelope_loss(spec, embeddings, face_ok & video_valid, frame_mask)
        if envelope is not None:
            out.loss = out.loss + self.training_config.envelope_loss_weight * envelope
            out.auxiliary["envelope"] = envelope.detach()
        return out
