"""`udiffse+`: one pass; the NMF is refitted from the residual of the denoised (Tweedie)
estimate |y - D(x)|^2 (only at levels where D(x) is sharp enough not to give speech away) and
used in UDiffSE's closed-form likelihood step.

A pass spends a fixed number of NMF updates (`nmf_pass_updates`) however many levels it has:
one update per level under-fits the noise at 12 levels and three per level over-fit it
(absorbing speech) at 60.

`InputNoiseSettings` (issue 26) let the input's own noise, tracked on y before sampling
(`avdiff.posterior.input_noise`), replace the refitted NMF in the likelihood, set the start level,
turn the samples into a Wiener filter of y and give a quiet input back; each item's estimates are
in the output's `report`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor
from tqdm.auto import tqdm

from avdiff.diffusion.samplers import Step
from avdiff.posterior.base import PosteriorMethod, PosteriorOutput, PosteriorProblem
from avdiff.posterior.input_noise import InputNoise, input_share, mix_in_input, wiener, windowed
from avdiff.posterior.nmf import NoiseModel
from avdiff.posterior.passes import PullPass, RefitMixin
from avdiff.posterior.registry import register_method, register_preset
from avdiff.posterior.schedule import PosteriorSchedule, posterior_schedule, power
from avdiff.posterior.settings import (CorrectorSettings, InputNoiseSettings, PassSettings, PullSettings,
                                      RefitSettings)

# The lowest adaptive start, in sigma_data: below it 12 levels would only polish a clean input.
LOWEST_ADAPTIVE_START = 0.1


@dataclass(frozen=True)
class UDiffSEPlusSettings(CorrectorSettings, PullSettings, RefitSettings, InputNoiseSettings, PassSettings):
    """udiffse+: one pull pass with the noise model refitted from the denoised estimate (or held
    at the noise tracked on the input)."""


class _TweediePass(RefitMixin, PullPass):
    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - ReversePass's
        super().__init__(*args, **kwargs)
        self.nmf_updates = self.refit_plan()

    def likelihood_step(self, step: Step) -> Tensor:
        self.refit(step.sigma, step.denoised)
        return super().likelihood_step(step)


@register_method("udiffse+")
class UDiffSEPlus(PosteriorMethod):
    """One pass, the noise model refitted from the denoised estimate on the way (the default)."""

    settings_class = UDiffSEPlusSettings
    pass_class: type = _TweediePass

    def run(self, problem: PosteriorProblem) -> PosteriorOutput:
        settings = self.settings
        wanted = isinstance(settings, InputNoiseSettings) and settings.needs_input_noise()  # (dps, diffpir: never)
        heard = InputNoise.of(problem.y, problem.compression) if wanted else None
        share = None if heard is None else self.mix_share(problem, heard)
        if share is not None and self.gives_all_back(problem, share):
            return self.given_back(problem, heard, share)
        start = self.start_level(problem, heard)
        schedule = posterior_schedule(problem.formulation, replace(settings, start_sigma=start))
        progress = problem.progress(len(schedule.sigmas) - 1, self.name)
        generators = list(problem.generators)
        if heard is not None and settings.noise_model == "tracked":  # (heard: the settings have the field)
            noise = NoiseModel.held(heard.variance)
        else:
            noise = NoiseModel.initial(power(problem.y), settings.nmf_rank, generators,
                                       scaled=settings.nmf_init == "scaled")
        one_pass = self.build_pass(problem, schedule, generators, noise, progress, heard)
        state = one_pass.run()
        progress.close()
        sample, report = self.output(problem, one_pass.finish(state), one_pass.noise, heard, share)
        if start is not None:
            report["start_sigma"] = [start] * len(sample)
        return PosteriorOutput(sample=sample, noise=one_pass.noise, network_calls=one_pass.calls, report=report)

    def mix_share(self, problem: PosteriorProblem, heard: InputNoise) -> Tensor | None:
        """The share of the input the output gives back, by the input's SNR: (B,), or (B, T) where
        `input_mix_window_frames` decides it on windows of the chunk (None: no mix)."""
        settings = self.settings
        if settings.input_mix_from_db is None:
            return None
        window = settings.input_mix_window_frames
        if window is None or problem.y.shape[-1] <= window:
            return self.share_of(heard)
        return windowed(problem.y, window, lambda part: self.share_of(InputNoise.of(part, problem.compression)))

    def share_of(self, heard: InputNoise) -> Tensor:
        """(B,) the input share the mix SNR of `heard` gives."""
        settings = self.settings
        snr_db = heard.mix_snr_db(settings.input_mix_by, settings.tracker_snr_bias_db, settings.tracker_trusted_below_db)
        return input_share(snr_db, settings.input_mix_from_db, settings.input_mix_full_db)

    def gives_all_back(self, problem: PosteriorProblem, share: Tensor) -> bool:
        """Whether every item's output is its input whatever the samples (`share`, the input's
        share of the output, is 1 everywhere)."""
        return bool((share >= 1).all())

    def given_back(self, problem: PosteriorProblem, heard: InputNoise, share: Tensor) -> PosteriorOutput:
        """The output where every item is given back whole: no pass runs (no network call), the
        same output and report as after one."""
        noise = NoiseModel.held(heard.variance)
        sample, report = self.output(problem, problem.y.to(torch.float32), noise, heard, share)
        return PosteriorOutput(sample=sample, noise=noise, network_calls=0, report=report)

    def start_level(self, problem: PosteriorProblem, heard: InputNoise | None) -> float | None:
        """The first noise level in sigma_data: `start_sigma`, or `start_noise_multiple` times the
        tracked noise level of the noisiest item (no higher than `start_sigma`, no lower than 0.1)."""
        settings = self.settings
        if heard is None or settings.start_noise_multiple is None:
            return settings.start_sigma
        sigma_data = problem.formulation.sigma_data
        level = settings.start_noise_multiple * float(heard.level().max()) / sigma_data
        highest = problem.formulation.sigma_max / sigma_data if settings.start_sigma is None else settings.start_sigma
        return float(min(highest, max(level, LOWEST_ADAPTIVE_START)))

    def output(self, problem: PosteriorProblem, sample: Tensor, noise: NoiseModel, heard: InputNoise | None,
               share: Tensor | None = None) -> tuple[Tensor, dict[str, list[float]]]:
        """The pass's mean sample as the settings' output (the Wiener filter of y, the input mixed
        back in by `share`, from `mix_share`) and what was estimated from the input per item."""
        settings, y = self.settings, problem.y.to(sample)
        if heard is None:
            return sample, {}
        report = {"snr_db": heard.snr_db.tolist(), "frame_snr_db": heard.frame_snr_db.tolist()}
        if settings.wiener_output:
            sample = wiener(y, power(sample), noise.variance.to(sample), settings.wiener_keeps_subtraction)
        if share is not None:
            sample = mix_in_input(y, sample, share, problem.compression)
            report["input_share"] = (share.mean(-1) if share.dim() > 1 else share).tolist()
        return sample, report

    def build_pass(self, problem: PosteriorProblem, schedule: PosteriorSchedule, generators: list[torch.Generator],
                   noise: NoiseModel, progress: tqdm | None, heard: InputNoise | None = None) -> _TweediePass:
        """The pass over `problem` (a subclass may build its own, e.g. with the lips' evidence and
        what was `heard` of the input's noise)."""
        return self.pass_class(problem.denoiser_for(self.settings.num_samples), problem.y.to(torch.float32), schedule,
                               self.settings, generators, problem.formulation.sigma_data, noise, progress)


# fUDiffSE, the fast variant of the AV-UDiffSE reference code: one pass of udiffse-paper's sampler
# (30 OUVE levels, Euler-Maruyama + one prior-only Langevin corrector, lambda 1.5 every 2nd level, 2
# samples), the NMF updated once from the denoised (Tweedie) estimate at every level where the
# likelihood runs, from uniform random factors. The reference updates the NMF before each such
# level's predictor from the previous level's estimate; here it is updated after the predictor from
# this level's, before the pull.
FUDIFFSE_PAPER = UDiffSEPlusSettings(
    steps=30, schedule="ouve", predictor="euler_maruyama", start_sigma=None, start_point="scaled_observation",
    normalize="spectrogram_max", corrector_steps=1, snr=0.5, corrector_step_factor=1.0, corrector_likelihood=False,
    likelihood_weight=1.5, likelihood_every=2, rescale_likelihood=False, clamp_gain=False, nmf_rank=4,
    nmf_init="uniform", nmf_iterations=1, nmf_pass_updates=None, nmf_refit_below=None, num_samples=2,
)
register_preset("fudiffse-paper", "udiffse+", FUDIFFSE_PAPER, "fast UDiffSE as in the AV-UDiffSE reference code: one "
                "30-level pass, the NMF updated from the denoised estimate every 2nd level")
