"""Target-speaker extraction by joint posterior sampling of two sources (`avdiff extract`).

A mixture y = s_t + s_i + n of the target talker s_t, an interfering talker s_i and noise n
(complex Gaussian with an NMF variance V, as in enhancement) is explained by two reverse passes
run side by side: the target's from the lip-conditioned prior, the interferer's from the same
network with the lips masked (or conditioned on the interferer's own video). Nothing is trained
on mixtures: the lips alone decide which source is the target (unsupervised audio-visual
speech separation with a generative speech prior).

Both sources start at y / 2 plus noise at a high level. After each predictor step both states,
at sigma_next, are pulled towards the mixture in closed form: with x_k = s_k + sigma e_k, the
residual r = y - x_t - x_i has variance 2 sigma^2 + V/2 per real component, and source k moves
by 2 w_k lam d / (2 sigma^2 + V/2) r (d = sigma^2 - sigma_next^2), its gain at most w_k, so the
two never overshoot y. The shares w_k are 1/2 each (`residual_split: even`), or each source's
posterior variance P_k sigma^2 / (P_k + sigma^2) over their sum, P_k the power of its denoised
estimate (`posterior`, the default): a Wiener split while sigma is high, an even one once the
estimates are sharper than the noise. The noise model is refitted from |y - D_t - D_i|^2 on the
way, as `udiffse+` refits it from |y - D|^2. The output is the sources' samples, or (the default,
`estimate: wiener`) the mixture filtered by each source's share of the power: the mixture's own
fine structure, the prior deciding whose it is. The defaults were chosen on tuning mixtures
(BENCHMARKS.md, "Target-speaker extraction"); `start_sigma` 20 was not tuned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor
from tqdm.auto import tqdm

from avdiff.config.loader import option
from avdiff.diffusion.noise import randn_like_per_item
from avdiff.diffusion.samplers import ScoreTerm, Step
from avdiff.posterior.base import LipEvidence
from avdiff.posterior.nmf import NoiseModel
from avdiff.posterior.passes import RefitMixin, ReversePass
from avdiff.posterior.schedule import posterior_schedule, power
from avdiff.posterior.settings import CorrectorSettings, PassSettings, RefitSettings

if TYPE_CHECKING:
    from avdiff.diffusion.denoiser import DenoiserFn
    from avdiff.diffusion.formulation import DiffusionFormulation


@dataclass(frozen=True)
class ExtractionSettings(CorrectorSettings, RefitSettings, PassSettings):
    """The joint two-source pass: its levels, the likelihood's weight and the noise model."""

    start_sigma: float | None = option(
        20.0, "first noise level in units of sigma_data: high enough that the two sources, both started at y / 2, "
        "are told apart by their priors; null = the schedule's largest")
    residual_split: Literal["even", "posterior"] = option(
        "posterior", "how the pull shares the residual y - x_t - x_i: evenly, or in proportion to each source's "
        "posterior variance P sigma^2 / (P + sigma^2) per bin, P the power of its denoised estimate (a Wiener split "
        "at high levels, even at low ones)")
    estimate: Literal["sample", "wiener"] = option(
        "wiener", "what is returned: the sources' samples, or the mixture filtered per bin by each source's share of "
        "the power (|s_k|^2 / (|s_t|^2 + |s_i|^2 + V), the samples' powers averaged): the mixture's own fine structure "
        "kept, the prior deciding whose it is")
    lips_cap: bool = option(
        False, "on frames with reliable lips, the target's power in the split and the filter is at most what the lips' "
        "predicted envelope says (scaled to the target estimate's level): where the lips are shut, the mixture goes "
        "to the interferer")


@dataclass
class ExtractionProblem:
    """One batch of mixtures: y (B, 2, F, T) compressed; `target_for(r)` / `interferer_for(r)` the
    denoisers of the two sources for a batch where each item is repeated r times in a row."""

    y: Tensor
    target_for: Callable[[int], DenoiserFn]
    interferer_for: Callable[[int], DenoiserFn]
    formulation: DiffusionFormulation
    generators: Sequence[torch.Generator]
    show_progress: bool = False
    lips: LipEvidence | None = None

    def progress(self, total: int) -> tqdm:
        return tqdm(total=total, desc="extract", disable=not self.show_progress, leave=False)


@dataclass
class JointOutput:
    """The target and interferer estimates (B, 2, F, T), the noise model and the network calls
    (a call of the two sources together counts as two)."""

    target: Tensor
    interferer: Tensor
    noise: NoiseModel
    network_calls: int


class _JointPass(RefitMixin, ReversePass):
    """Both sources in one batch: rows [target (B*R) ; interferer (B*R)], y repeated per sample."""

    def __init__(self, target: DenoiserFn, interferer: DenoiserFn, *args, lips: LipEvidence | None = None,
                 **kwargs) -> None:  # noqa: ANN002, ANN003 - ReversePass's
        super().__init__(_stacked(target, interferer), *args, **kwargs)
        self.generators = list(self.generators) * 2  # a source's draws follow the other's in each stream
        self.nmf_updates = self.refit_plan()
        self.lips = lips if self.settings.lips_cap else None

    def target_power(self, estimate: Tensor) -> Tensor:
        """The target's power (rows of B*R or of B, 1, F, T), capped where the lips are reliable by
        their predicted speech power, scaled to the estimate's level on those frames."""
        if self.lips is None:
            return estimate
        repeats = len(estimate) // len(self.lips.speech_power)
        speech = self.lips.speech_power.to(estimate).repeat_interleave(repeats, 0).unsqueeze(1)
        r = self.lips.reliability.to(estimate).clamp(0, 1).repeat_interleave(repeats, 0)[:, None, None]
        gain = (estimate * r).sum((1, 2, 3), keepdim=True) / (speech * r).sum((1, 2, 3), keepdim=True).clamp_min(1e-12)
        return r * torch.minimum(estimate, gain * speech) + (1 - r) * estimate

    def start(self) -> Tensor:
        """Both sources at y / 2 + sigma_0 n (y / 2 s(t) with `start_point: scaled_observation`)."""
        scale = self.schedule.scales[0] if self.settings.start_point == "scaled_observation" else 1.0
        mean = torch.cat([self.y / (2 * scale)] * 2)
        return mean + self.schedule.sigmas[0] * randn_like_per_item(mean, self.generators)

    def residual(self, stacked: Tensor) -> Tensor:
        """y - (target + interferer) for stacked rows -> (B*R, 2, F, T)."""
        target, interferer = stacked.chunk(2)
        return self.y - target - interferer

    def residual_power(self, estimate: Tensor) -> Tensor:
        residual = power(self.residual(estimate))
        return residual.view(-1, self.repeats, *residual.shape[1:]).mean(1)

    def corrector_score(self) -> ScoreTerm | None:
        if not self.settings.corrector_likelihood:
            return None

        def score(x: Tensor, sigma: float) -> Tensor:
            one = self.settings.likelihood_weight * self.residual(x) / (2 * sigma**2 + self.variance() / 2)
            return torch.cat([one, one])

        return score

    def likelihood_step(self, step: Step) -> Tensor:
        self.refit(step.sigma, step.denoised)
        if not self.active(step):
            return step.x
        d = step.sigma**2 - step.sigma_next**2
        weight = self.settings.likelihood_weight * self.settings.likelihood_every
        gain = weight * d / (2 * step.sigma**2 + self.variance() / 2)
        shares = self.shares(step.denoised, step.sigma)
        pull = self.residual(step.x)
        return step.x + torch.cat([(2 * gain * share).clamp(max=share) * pull for share in shares])

    def shares(self, denoised: Tensor, sigma: float) -> tuple[Tensor, Tensor] | tuple[float, float]:
        """Each source's share of the residual: 1/2 each, or its posterior variance's share per bin."""
        if self.settings.residual_split == "even":
            return 0.5, 0.5
        target, interferer = power(denoised).unsqueeze(1).chunk(2)  # (B*R, 1, F, T) each
        target, interferer = (p * sigma**2 / (p + sigma**2) for p in (self.target_power(target), interferer))
        total = (target + interferer).clamp_min(1e-12)
        return target / total, interferer / total

    def wiener(self, state: Tensor) -> tuple[Tensor, Tensor]:
        """(target, interferer) as the mixture times each source's share of the power -> (B, 2, F, T)."""
        powers = [self.finish(power(source).unsqueeze(1)) for source in state.chunk(2)]  # (B, 1, F, T), mean over samples
        powers[0] = self.target_power(powers[0])
        total = powers[0] + powers[1] + self.noise.variance.unsqueeze(1)
        y = self.y[:: self.repeats]
        return y * powers[0] / total, y * powers[1] / total

    def finish_both(self, state: Tensor) -> tuple[Tensor, Tensor]:
        """(target, interferer), each averaged over its parallel samples -> (B, 2, F, T)."""
        target, interferer = state.chunk(2)
        return self.finish(target), self.finish(interferer)


class JointExtraction:
    """Target-speaker extraction: one joint reverse pass of the target and the interferer."""

    settings_class = ExtractionSettings

    def __init__(self, settings: ExtractionSettings | None = None) -> None:
        self.settings = settings or ExtractionSettings()

    def run(self, problem: ExtractionProblem) -> JointOutput:
        settings = self.settings
        schedule = posterior_schedule(problem.formulation, settings)
        progress = problem.progress(len(schedule.sigmas) - 1)
        generators = list(problem.generators)
        y = problem.y.to(torch.float32)
        noise = NoiseModel.initial(power(y), settings.nmf_rank, generators, scaled=settings.nmf_init == "scaled")
        joint = _JointPass(problem.target_for(settings.num_samples), problem.interferer_for(settings.num_samples),
                           y, schedule, settings, generators, problem.formulation.sigma_data, noise, progress,
                           lips=problem.lips)
        state = joint.run()
        progress.close()
        target, interferer = joint.finish_both(state)
        if settings.estimate == "wiener":
            target, interferer = joint.wiener(state)
        return JointOutput(target, interferer, joint.noise, 2 * joint.calls)


def _stacked(target: DenoiserFn, interferer: DenoiserFn) -> DenoiserFn:
    """One denoiser over stacked rows: the first half through `target`, the second through `interferer`."""
    def run(x: Tensor, sigma: Tensor) -> Tensor:
        half = len(x) // 2
        sigma_t, sigma_i = (sigma, sigma) if sigma.ndim == 0 else (sigma[:half], sigma[half:])
        return torch.cat([target(x[:half], sigma_t), interferer(x[half:], sigma_i)])

    return run
