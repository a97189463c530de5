"""`udiffse+lips`: udiffse+ in which the lips count where they are reliable.

Issue 25's probes (BENCHMARKS.md, "Where the lips get lost in audio-visual enhancement") found
two places where udiffse+ loses what the lips add to the prior: the noise model, refitted from
|y - D(x)|^2, absorbs the target wherever the prior has not yet drawn it (in babble it fits the
target's speech as well as the babble), and the pull towards y outweighs the lips (a lower
likelihood weight gained +2 dB with the lips in babble). This method changes both, on the frames
where the lips are reliable and nowhere else:

- speech presence: the lip encoder's predicted envelope of the target (`LipEvidence`), scaled
  to the level of the current denoised estimate, against the noise model gives a presence
  P = S / (S + V) per bin; the noise model is refitted with each bin weighted by 1 - r P (r the
  frame's reliability), so bins where the lips say the target speaks stay out of its fit;
- the likelihood weight is `lips_likelihood_weight` on reliable frames (mixed by r per frame),
  and from the first refit on it rises with the presence towards the full `likelihood_weight`
  (`weight_follows_presence`): bins the target dominates keep the full pull, so input that is
  already clean is left about as it is (at 20 dB the fixed lower weight cost 3.7 dB SI-SDR).
Without lip evidence (audio-only, or an encoder without an envelope) it is udiffse+ with the same
settings, sample for sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from avdiff.config.loader import option
from avdiff.posterior.base import LipEvidence, PosteriorProblem
from avdiff.posterior.nmf import FLOOR, NoiseModel, fit_nmf
from avdiff.posterior.registry import register_method
from avdiff.posterior.schedule import PosteriorSchedule, power
from avdiff.posterior.udiffse_plus import UDiffSEPlus, UDiffSEPlusSettings, _TweediePass


@dataclass(frozen=True)
class LipWeightedSettings(UDiffSEPlusSettings):
    """udiffse+ with the lips' speech presence in the noise fit and a likelihood weight of their own."""

    lips_likelihood_weight: float = option(
        0.75, "lambda on frames where the lips are reliable (likelihood_weight elsewhere and without lips)")
    presence_weighting: bool = option(
        True, "refit the noise model with each bin weighted by 1 - the lips' speech presence there")
    weight_follows_presence: bool = option(
        True, "on lip frames, lambda rises from lips_likelihood_weight to likelihood_weight with the lips' speech "
        "presence in each bin (from the first refit on), so bins the target dominates keep the full pull")


class _LipWeightedPass(_TweediePass):
    """udiffse+'s pass with the lips' per-frame likelihood weight and presence-weighted refits."""

    def __init__(self, *args, lips: LipEvidence, **kwargs) -> None:  # noqa: ANN002, ANN003 - ReversePass's
        super().__init__(*args, **kwargs)
        self.speech = lips.speech_power.to(self.y).clamp_min(0)  # (B, F, T)
        self.reliability = lips.reliability.to(self.y).clamp(0, 1).unsqueeze(1)  # (B, 1, T)
        self.frame_weight = self.mixed_weight(self.settings.lips_likelihood_weight)

    def likelihood_weight(self) -> Tensor:
        return self.frame_weight  # (B*R, 1, 1, T), or per bin (B*R, 1, F, T) once it follows the presence

    def mixed_weight(self, lips_weight: float | Tensor) -> Tensor:
        """r * lips_weight + (1 - r) * likelihood_weight per frame (r the reliability), (B*R, 1, ., T)."""
        r = self.reliability.repeat_interleave(self.repeats, dim=0).unsqueeze(1)  # (B*R, 1, 1, T)
        return r * lips_weight + (1 - r) * self.settings.likelihood_weight

    def refit(self, sigma: float, denoised: Tensor) -> None:
        updates = self.nmf_updates.get(sigma, 0)
        if not updates:
            return
        settings = self.settings
        presence = self.presence(denoised) if settings.weight_follows_presence or settings.presence_weighting else None
        if settings.weight_follows_presence:
            rise = (settings.likelihood_weight - settings.lips_likelihood_weight) * presence
            self.frame_weight = self.mixed_weight(
                settings.lips_likelihood_weight + rise.repeat_interleave(self.repeats, dim=0).unsqueeze(1))
        weights = self.fit_weights(denoised, presence) if settings.presence_weighting else None
        self.noise = fit_nmf(self.residual_power(denoised), self.noise, updates, weights)

    def presence(self, denoised: Tensor) -> Tensor:
        """(B, F, T) P = S / (S + V): the lips' speech power S, scaled to the denoised estimate's
        level on reliable frames, against the current noise model V."""
        estimate = power(denoised)
        estimate = estimate.view(-1, self.repeats, *estimate.shape[1:]).mean(1)
        r = self.reliability
        gain = (estimate * r).sum((1, 2)) / (self.speech * r).sum((1, 2)).clamp_min(FLOOR)
        speech = gain[:, None, None] * self.speech
        return speech / (speech + self.noise.variance)

    def fit_weights(self, denoised: Tensor, presence: Tensor | None = None) -> Tensor:
        """(B, F, T) 1 - r P: P the lips' speech presence against the current noise model (given, or
        worked out from `denoised`)."""
        return 1 - self.reliability * (self.presence(denoised) if presence is None else presence)


@register_method("udiffse+lips")
class UDiffSELips(UDiffSEPlus):
    """udiffse+ in which the lips count: their speech presence keeps the target out of the noise
    model, and a lower likelihood weight on frames with reliable lips."""

    settings_class = LipWeightedSettings

    def build_pass(self, problem: PosteriorProblem, schedule: PosteriorSchedule, generators: list[torch.Generator],
                   noise: NoiseModel, progress: tqdm | None) -> _TweediePass:
        if problem.lips is None:
            return super().build_pass(problem, schedule, generators, noise, progress)
        return _LipWeightedPass(problem.denoiser_for(self.settings.num_samples), problem.y.to(torch.float32),
                                schedule, self.settings, generators, problem.formulation.sigma_data, noise, progress,
                                lips=problem.lips)
