"""Guidance distillation (training.objective guided): in one network pass what guidance gives in two.

Classifier-free guidance runs the score network twice at every level, with the lips and with them
masked, and extrapolates: D_w = D_null + w (D_cond - D_null). The student, started from the
teacher's weights and reading the teacher's frozen lips, learns to give D_w in one conditional
pass at states of the forward process (x0 + sigma n, sigma from the training distribution),
with the EDM loss weighting: the first stage of Meng et al., "On distillation of guided diffusion
models" (CVPR 2023), at one fixed w. Where the condition is masked (no face, or dropped as in
training) the teacher's target there is its audio-only estimate, so the student stays the speech
prior where the lips are missing. Sampled with guidance 1, it costs half the network work of its teacher.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from avdiff.config.schema import AVDiffConfig
from avdiff.diffusion.denoiser import Denoiser, guided_denoiser
from avdiff.diffusion.formulation import DiffusionFormulation
from avdiff.errors import ConfigError, InputError
from avdiff.models.lip_encoder import LipEncoder
from avdiff.pipeline.model_folder import load_model_folder
from avdiff.training.starting_weights import copy_network, model_folder_for, sigma_data_of


@dataclass
class Teacher:
    """The frozen guided denoiser a student learns from, and the lips it reads."""

    denoiser: Denoiser
    lip_encoder: LipEncoder
    guidance: float

    def target(self, cond: Tensor, cond_mask: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
        """(x, sigma) -> the teacher's guided D_w for this condition, without a gradient."""
        network = self.denoiser.network
        if next(network.parameters()).device != cond.device:  # the student was moved (a GPU run)
            network.to(cond.device)
        guided = guided_denoiser(self.denoiser, cond, cond_mask, self.guidance)

        def run(x: Tensor, sigma: Tensor) -> Tensor:
            with torch.no_grad():
                return guided(x, sigma)

        return run


def teacher_folder(config: AVDiffConfig) -> Path:
    """The model folder training.teacher names (a path or a shipped model's name)."""
    return model_folder_for("training.teacher", config.training.teacher)


def teacher_sigma_data(config: AVDiffConfig) -> float:
    """The teacher's sigma_data: the student must denoise on the same scale."""
    return sigma_data_of("training.teacher", config.training.teacher)


def load_teacher(config: AVDiffConfig) -> Teacher:
    """The frozen teacher training.teacher names; a ConfigError unless it is an audio-visual model."""
    folder = teacher_folder(config)
    try:
        components = load_model_folder(folder)
    except InputError as error:
        raise ConfigError(f"training.teacher: {error}") from error
    if not components.audio_visual:
        raise ConfigError(f"training.teacher: {folder} is an audio-only speech prior: it has no lips to guide with")
    network = components.score_model.eval().requires_grad_(False)
    lips = components.lip_encoder.requires_grad_(False).train()  # a frozen LipEncoder stays in eval mode
    return Teacher(Denoiser(network, components.formulation), lips, config.training.teacher_guidance)


def start_from_teacher(student: nn.Module, formulation: DiffusionFormulation, teacher: Teacher) -> None:
    """Copy the teacher's weights into `student`, after checking both denoise alike (same
    formulation and sigma_data); a ConfigError names what differs."""
    copy_network(student, formulation, teacher.denoiser.network, teacher.denoiser.formulation, "training.teacher")
