"""What a VAE enhancement method is given and gives back.

The VAE family's methods (`vae-mcem`, `switching-vae`) enhance with a frame-wise speech VAE
(`avdiff.models.speech_vae.SpeechVAE`) instead of a score network: the noisy STFT
x = sqrt(g) s + b, s | z ~ N_c(0, sigma^2(z, v)) from the VAE, b ~ N_c(0, W H) from the NMF noise
model shared with the diffusion methods (`avdiff.posterior.nmf`), g a gain per frame (so the
speech's variance in x is g sigma^2); EM fits W, H and g, and the output is the posterior mean of
the speech, a Wiener filter of x averaged over samples of z.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor
from tqdm.auto import tqdm

from avdiff.posterior.base import EnhancementMethod
from avdiff.posterior.nmf import NoiseModel

if TYPE_CHECKING:  # annotations only: the registry loads without the networks
    from avdiff.models.speech_vae import SpeechVAE


@dataclass
class VAEProblem:
    """One utterance to enhance.

    `power` (F, T): |x|^2 of the (peak-normalised) noisy STFT; `network`: the speech VAE;
    `lips` (T, D) and `lips_mask` (T,) bool: the lip condition on the STFT grid and where it is
    usable (None without video, or for an audio-only VAE); `generator`: the random stream.
    """

    power: Tensor
    network: SpeechVAE
    generator: torch.Generator
    lips: Tensor | None = None
    lips_mask: Tensor | None = None
    show_progress: bool = False

    def progress(self, total: int, name: str) -> tqdm:
        return tqdm(total=total, desc=name, disable=not self.show_progress, leave=False)


@dataclass
class VAEOutput:
    """The Wiener gain (F, T) whose product with x is the speech estimate, the fitted noise model,
    the decoder calls, the cost after each EM iteration and, for the switching VAE, each frame's
    posterior probability of the audio-visual branch (T,)."""

    wiener_gain: Tensor
    noise: NoiseModel
    network_calls: int
    costs: list[float] = field(default_factory=list)
    switch: Tensor | None = None


class VAEMethod(EnhancementMethod):
    """An enhancement method of the VAE family (run by `avdiff.pipeline.vae_pipeline.VAEPipeline`)."""

    family: ClassVar[str] = "vae"

    @classmethod
    def cost(cls, settings: object) -> str:
        return (f"{getattr(settings, 'em_iterations')} EM iterations x {getattr(settings, 'mh_steps')} "
                "Metropolis-Hastings steps")

    @abstractmethod
    def run(self, problem: VAEProblem) -> VAEOutput:
        """The Wiener gain of `problem.power`'s speech."""
