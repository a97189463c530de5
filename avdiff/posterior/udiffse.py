"""`udiffse`: UDiffSE's EM (Nortier, Sadeghi, Serizel 2024), and the `udiffse-paper` preset.

E-step: `num_samples` reverse passes started near y with, every `likelihood_every` levels, the
closed-form likelihood step x <- x + lam d / (sigma^2 + V/2) (y - x), d = sigma^2 - sigma_next^2
(skipped in the first EM iteration); M-step: the NMF noise model refitted to |y - x|^2 averaged
over the samples. No backpropagation through the network.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from avdiff.config.loader import option
from avdiff.diffusion.samplers import ScoreTerm, Step
from avdiff.posterior.base import PosteriorMethod, PosteriorOutput, PosteriorProblem
from avdiff.posterior.nmf import NoiseModel, fit_nmf
from avdiff.posterior.passes import PullPass
from avdiff.posterior.registry import register_method, register_preset
from avdiff.posterior.schedule import posterior_schedule, power
from avdiff.posterior.settings import CorrectorSettings, PassSettings, PullSettings


@dataclass(frozen=True)
class UDiffSESettings(CorrectorSettings, PullSettings, PassSettings):
    """udiffse: a pull pass per EM iteration, the noise model refitted between them."""

    nmf_iterations: int = option(1, "multiplicative NMF updates per M-step (UDiffSE: 1)")
    em_iterations: int = option(5, "EM iterations (reverse passes)")


class _EStep(PullPass):
    """A pull pass whose likelihood is off in the first EM iteration (the prior alone)."""

    with_likelihood = False

    def corrector_score(self) -> ScoreTerm | None:
        return super().corrector_score() if self.with_likelihood else None

    def likelihood_step(self, step: Step) -> Tensor:
        return super().likelihood_step(step) if self.with_likelihood else step.x


@register_method("udiffse")
class UDiffSE(PosteriorMethod):
    """UDiffSE's EM: reverse passes with a fixed NMF noise model, refitted after each."""

    settings_class = UDiffSESettings

    def run(self, problem: PosteriorProblem) -> PosteriorOutput:
        settings = self.settings
        schedule = posterior_schedule(problem.formulation, settings)
        progress = problem.progress(settings.em_iterations * (len(schedule.sigmas) - 1), self.name)
        generators = list(problem.generators)
        noise = NoiseModel.initial(power(problem.y), settings.nmf_rank, generators, scaled=settings.nmf_init == "scaled")
        passes = _EStep(problem.denoiser_for(settings.num_samples), problem.y.to(torch.float32), schedule, settings,
                        generators, problem.formulation.sigma_data, noise, progress)
        for iteration in range(settings.em_iterations):
            passes.with_likelihood = iteration > 0
            passes.noise = noise
            state = passes.run()
            noise = fit_nmf(passes.residual_power(state), noise, settings.nmf_iterations)
        progress.close()
        return PosteriorOutput(sample=passes.finish(state), noise=noise, network_calls=passes.calls)


# UDiffSE as published (Nortier, Sadeghi, Serizel 2024, and its reference code): OUVE prior on
# 30 levels, Euler-Maruyama predictor + one prior-only Langevin corrector (snr 0.5, step
# (snr std)^2), likelihood lambda 1.5 every 2nd level, 5 EM iterations of 2 parallel samples,
# start at t = 1 from X + std(1) n, X scaled to max |X| = 1, NMF rank 4 from uniform random
# factors with one multiplicative update per M-step.
UDIFFSE_PAPER = UDiffSESettings(
    steps=30, schedule="ouve", predictor="euler_maruyama", start_sigma=None, start_point="scaled_observation",
    normalize="spectrogram_max", corrector_steps=1, snr=0.5, corrector_step_factor=1.0, corrector_likelihood=False,
    likelihood_weight=1.5, likelihood_every=2, rescale_likelihood=False, clamp_gain=False, nmf_rank=4,
    nmf_iterations=1, nmf_init="uniform", em_iterations=5, num_samples=2,
)
register_preset("udiffse-paper", "udiffse", UDIFFSE_PAPER, "UDiffSE exactly as published (30 levels x 5 EM "
                "iterations x 2 samples, Euler-Maruyama + Langevin on the OUVE SDE)")

# AV-UDiffSE (Ayilo, Sadeghi, Serizel, Alameda-Pineda, ICASSP 2025; its reference code's UDiffSE
# class): the same EM with the lip-conditioned prior, run with 4 parallel samples. The lips come from
# the model and the video (`--video`), not from the method.
register_preset("av-udiffse", "udiffse", replace(UDIFFSE_PAPER, num_samples=4),
                "AV-UDiffSE as published: udiffse-paper's EM with 4 parallel samples (give --video for the lips)")
