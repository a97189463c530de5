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

With `refit_on_lip_frames` input with lips and input without get the recipe that was measured best
for each: without reliable lips (audio-only input, no face) the settings' input-noise recipe (issue
26: the noise tracked on y and held, the Wiener output, a quiet input given back), which never
went far below the input; with reliable lips the presence-weighted NMF refitted during the pass
and the posterior sample itself, because a noise estimate made from y alone takes babble for
speech and leaves the lips nothing to do (BENCHMARKS.md, "The two-stage `v2s` in audio-visual
enhancement"). An item with some reliable frames mixes the two by its share of them (noise
variance and output alike), through a ramp (`recipe_share_low` / `recipe_share_high`: the recipe
without lips at or below half the frames and with them from three quarters, as `models/v2s` ships
it); with `tracked_recipe_below_db` an input whose tracked SNR reads that low keeps the recipe
without lips (the tracker has found the noise: BENCHMARKS.md, "The tracker knows when the lips'
recipe loses").

With `noisy_lips_likelihood_weight` the lips' weight also follows the input's SNR as tracked on y:
lower where the mixture is noisy (the lips overrule it more), back to `lips_likelihood_weight`
where it is nearly clean (a low weight there redraws speech the input already gives).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor
from tqdm.auto import tqdm

from avdiff.config.loader import option
from avdiff.posterior.base import LipEvidence, PosteriorProblem
from avdiff.posterior.input_noise import InputNoise, mix_in_input
from avdiff.posterior.nmf import FLOOR, NoiseModel, fit_nmf
from avdiff.posterior.registry import register_method
from avdiff.posterior.schedule import PosteriorSchedule, nmf_updates_per_level, power
from avdiff.posterior.udiffse_plus import UDiffSEPlus, UDiffSEPlusSettings, _TweediePass
from avdiff.timegrid import STFT_FRAMES_PER_VIDEO_FRAME, VIDEO_FPS


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
    noisy_lips_likelihood_weight: float | None = option(
        None, "lambda on lip frames of a noisy input (the SNR tracked on y at or below noisy_snr_db), rising linearly "
        "to lips_likelihood_weight at quiet_snr_db: the lips overrule a noisy mixture more and leave a clean one "
        "alone; null = lips_likelihood_weight at every SNR")
    noisy_snr_db: float = option(5.0, "tracked input SNR (dB) at or below which noisy_lips_likelihood_weight holds")
    quiet_snr_db: float = option(10.0, "tracked input SNR (dB) at or above which lips_likelihood_weight holds")
    refit_on_lip_frames: bool = option(
        False, "input with reliable lips uses the presence-weighted NMF refitted during the pass and gives the "
        "sample itself, whatever noise_model, wiener_output and input_mix_from_db say (those then hold for input "
        "without reliable lips and audio-only input); mixed by each item's share of reliable lip frames")
    recipe_share_seconds: float = option(
        0.0, "with refit_on_lip_frames, mix the two recipes frame by frame by the lips' reliability averaged over "
        "this many seconds around each frame (a slow share, no jumps at every masked span); 0 = one share per item "
        "(1 s measured worse on tuning clips with masked or occluded spans: BENCHMARKS.md, 'The agreement in step')")
    recipe_share_power: float = option(
        1.0, "with refit_on_lip_frames, the share that mixes the two recipes raised to this power: above 1 an item "
        "whose lips are reliable on only part of its frames leans to the recipe without lips (1 = the share itself)")
    recipe_share_low: float = option(
        0.0, "with refit_on_lip_frames, a share of reliable lips at or below this gives the recipe without lips whole; "
        "between it and recipe_share_high the mix rises linearly (before recipe_share_power)")
    recipe_share_high: float = option(
        1.0, "with refit_on_lip_frames, a share of reliable lips at or above this gives the recipe with lips whole")
    tracked_recipe_below_db: float | None = option(
        None, "with refit_on_lip_frames, an input whose SNR tracked on y is at or below this (dB) keeps the recipe "
        "without lips whatever its lips (the tracker has found the noise, and its recipe beat the refitted one), "
        "rising linearly to the share of reliable lips at tracked_recipe_below_db + 1 dB; null = off")

    def needs_input_noise(self) -> bool:
        return (super().needs_input_noise() or self.noisy_lips_likelihood_weight is not None
                or self.tracked_recipe_below_db is not None)

    def recipe_share(self, reliability: Tensor, snr_db: Tensor | None = None) -> Tensor:
        """The share (B,) or (B, T) that mixes the two recipes of `refit_on_lip_frames`, from the lips'
        reliability (B, T) on STFT frames and, with tracked_recipe_below_db, the tracked SNR (B,)."""
        share = lip_share(reliability, self.recipe_share_seconds)
        share = ((share - self.recipe_share_low) / (self.recipe_share_high - self.recipe_share_low)).clamp(0, 1)
        share = share ** self.recipe_share_power
        if self.tracked_recipe_below_db is None or snr_db is None:
            return share
        rise = (snr_db.to(share) - self.tracked_recipe_below_db).clamp(0, 1)
        return share * rise.view(-1, *[1] * (share.ndim - 1))

    def check_input_noise(self) -> None:
        super().check_input_noise()
        if self.quiet_snr_db <= self.noisy_snr_db:
            raise ValueError("posterior setting quiet_snr_db must be above noisy_snr_db")
        if not 0 <= self.recipe_share_low < self.recipe_share_high <= 1:
            raise ValueError("posterior settings recipe_share_low < recipe_share_high must lie in [0, 1]")

    def lips_weight(self, snr_db: Tensor | None) -> float | Tensor:
        """The lips' lambda: lips_likelihood_weight, or per item (B,) by the tracked SNR `snr_db` when
        noisy_lips_likelihood_weight is set."""
        if self.noisy_lips_likelihood_weight is None or snr_db is None:
            return self.lips_likelihood_weight
        rise = ((snr_db - self.noisy_snr_db) / (self.quiet_snr_db - self.noisy_snr_db)).clamp(0, 1)
        return self.noisy_lips_likelihood_weight + (self.lips_likelihood_weight - self.noisy_lips_likelihood_weight) * rise


class _LipWeightedPass(_TweediePass):
    """udiffse+'s pass with the lips' per-frame likelihood weight and presence-weighted refits."""

    def __init__(self, *args, lips: LipEvidence, refitted: NoiseModel | None = None,  # noqa: ANN002, ANN003
                 heard: InputNoise | None = None, **kwargs) -> None:
        self.refitted = refitted  # the lip frames' own NMF beside a held noise model (refit_on_lip_frames)
        self.heard_snr_db = None if heard is None else heard.snr_db  # (B,) for the recipe share
        super().__init__(*args, **kwargs)
        self.speech = lips.speech_power.to(self.y).clamp_min(0)  # (B, F, T)
        self.reliability = lips.reliability.to(self.y).clamp(0, 1).unsqueeze(1)  # (B, 1, T)
        lips_weight = self.settings.lips_weight(None if heard is None else heard.snr_db.to(self.y))
        self.lips_weight = lips_weight.view(-1, 1, 1) if isinstance(lips_weight, Tensor) else lips_weight  # (B, 1, 1)
        self.frame_weight = self.mixed_weight(self.per_row(self.lips_weight))
        if refitted is not None:
            self.held = self.noise
            self.noise = self.blended()

    def refit_plan(self) -> dict[float, int]:
        settings = self.settings if self.refitted is None else replace(self.settings, noise_model="refit")
        return nmf_updates_per_level(self.schedule.sigmas, settings, self.sigma_data)

    def blended(self) -> NoiseModel:
        """The refitted NMF and the held noise, mixed by the item's share of reliable lips (one share
        per item: recipes switched frame by frame leave the estimate at two levels, which cost up to
        5 dB SI-SDR with half the frames masked)."""
        share = self.settings.recipe_share(self.reliability.squeeze(1), self.heard_snr_db)
        share = share.view(share.shape[0], 1, -1)  # (B, 1, 1 or T)
        return NoiseModel.held(share * self.refitted.variance + (1 - share) * self.held.variance)

    def likelihood_weight(self) -> Tensor:
        return self.frame_weight  # (B*R, 1, 1, T), or per bin (B*R, 1, F, T) once it follows the presence

    def per_row(self, value: float | Tensor) -> float | Tensor:
        """A number, or a per-item (B, ...) tensor repeated for each item's samples as (B*R, 1, ...)."""
        return value.repeat_interleave(self.repeats, dim=0).unsqueeze(1) if isinstance(value, Tensor) else value

    def mixed_weight(self, lips_weight: float | Tensor) -> Tensor:
        """r * lips_weight + (1 - r) * likelihood_weight per frame (r the reliability), (B*R, 1, ., T)."""
        r = self.per_row(self.reliability)  # (B*R, 1, 1, T)
        return r * lips_weight + (1 - r) * self.settings.likelihood_weight

    def refit(self, sigma: float, denoised: Tensor) -> None:
        updates = self.nmf_updates.get(sigma, 0)
        if not updates:
            return
        settings = self.settings
        presence = self.presence(denoised) if settings.weight_follows_presence or settings.presence_weighting else None
        if settings.weight_follows_presence:
            self.frame_weight = self.mixed_weight(
                self.per_row(self.lips_weight + (settings.likelihood_weight - self.lips_weight) * presence))
        weights = self.fit_weights(denoised, presence) if settings.presence_weighting else None
        if self.refitted is None:
            self.noise = fit_nmf(self.residual_power(denoised), self.noise, updates, weights)
            return
        self.refitted = fit_nmf(self.residual_power(denoised), self.refitted, updates, weights)
        self.noise = self.blended()

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
                   noise: NoiseModel, progress: tqdm | None, heard: InputNoise | None = None) -> _TweediePass:
        if problem.lips is None:
            return super().build_pass(problem, schedule, generators, noise, progress, heard)
        settings = self.settings
        refitted = None
        if settings.refit_on_lip_frames and settings.noise_model != "refit":
            refitted = NoiseModel.initial(power(problem.y.to(torch.float32)), settings.nmf_rank, _copies(generators),
                                          scaled=settings.nmf_init == "scaled")  # (copies: frames without lips
            # then draw exactly what the tracked recipe alone draws)
        return _LipWeightedPass(problem.denoiser_for(settings.num_samples), problem.y.to(torch.float32),
                                schedule, settings, generators, problem.formulation.sigma_data, noise, progress,
                                lips=problem.lips, refitted=refitted, heard=heard)

    def gives_all_back(self, problem: PosteriorProblem, share: Tensor) -> bool:
        """udiffse+'s rule, unless the output keeps the sample itself on reliable lip frames."""
        keeps_sample = problem.lips is not None and self.settings.refit_on_lip_frames
        return not keeps_sample and super().gives_all_back(problem, share)

    def output(self, problem: PosteriorProblem, sample: Tensor, noise: NoiseModel, heard: InputNoise | None,
               share: Tensor | None = None) -> tuple[Tensor, dict[str, list[float]]]:
        """udiffse+'s output; with `refit_on_lip_frames`, the sample itself on reliable lip frames."""
        estimate, report = super().output(problem, sample, noise, heard, share)
        if problem.lips is not None and heard is not None and self.settings.noisy_lips_likelihood_weight is not None:
            report["lips_likelihood_weight"] = self.settings.lips_weight(heard.snr_db).tolist()
        if problem.lips is None or not self.settings.refit_on_lip_frames or estimate is sample:
            return estimate, report
        share = self.settings.recipe_share(problem.lips.reliability.to(sample), None if heard is None else heard.snr_db)
        return mix_in_input(sample, estimate, share, problem.compression), report


def lip_share(reliability: Tensor, seconds: float = 0.0) -> Tensor:
    """Each item's share of reliable lips from its reliability (B, T) on STFT frames: the mean over
    the frames (B,), or with `seconds` > 0 per frame (B, T), the mean over that many seconds
    centred on it (cut at the ends)."""
    reliability = reliability.clamp(0, 1)
    if seconds <= 0:
        return reliability.mean(-1)
    half = int(round(seconds * VIDEO_FPS * STFT_FRAMES_PER_VIDEO_FRAME / 2))
    ones = reliability.new_ones(1, 1, 2 * half + 1)
    sums = torch.nn.functional.conv1d(reliability.unsqueeze(1), ones, padding=half)
    counts = torch.nn.functional.conv1d(torch.ones_like(reliability[:1]).unsqueeze(1), ones, padding=half)
    return (sums / counts)[:, 0]


def _copies(generators: list[torch.Generator]) -> list[torch.Generator]:
    """Generators in the same state as `generators`, drawn from without advancing them."""
    copies = []
    for generator in generators:
        copy = torch.Generator(device=generator.device)
        copy.set_state(generator.get_state())
        copies.append(copy)
    return copies
