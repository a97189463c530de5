"""Diffusion posterior sampling for unsupervised speech enhancement.

The clean-speech prior (the trained score network, with the lips or the null condition) is
combined at test time with a likelihood for the noisy observation y = x + n, where n is
complex Gaussian with an NMF variance V (`avdiff.pipeline.nmf`), all on the compressed
spectrogram as UDiffSE does. The samplers' unscaled (variance-exploding) view has
x_sigma = x0 + sigma n per real component, so each real component of y given x_sigma has
variance about sigma^2 + V / 2 (V is the complex variance: V / 2 per real component).

- `udiffse`: UDiffSE's EM. E-step: `num_samples` reverse passes started near y with, every
  `likelihood_every` levels, the closed-form likelihood step
  x <- x + lam d / (sigma^2 + V/2) (y - x), d = sigma^2 - sigma_next^2
  (skipped in the first EM iteration); M-step: NMF refitted to |y - x|^2 averaged over the
  samples. No backpropagation through the network.
- `udiffse+`: one pass; the NMF is refitted from the residual of the denoised (Tweedie)
  estimate |y - D(x)|^2 (only at levels where D(x) is sharp enough not to give speech away)
  and used in the same likelihood step. A pass spends a fixed number of NMF updates
  (`nmf_pass_updates`) however many levels it has: one update per level under-fits the noise
  at 12 levels and three per level over-fit it (absorbing speech) at 60.
- `dps`: one pass; the likelihood step follows the gradient of log N(y; D(x), c^2 + V/2)
  through the denoiser (c^2 = sd^2 sigma^2 / (sd^2 + sigma^2), the Gaussian posterior
  variance of x0), scaled by d like the prior step; NMF as in udiffse+.
- `diffpir`: the likelihood applied to the denoised estimate at every network call, so any
  sampler (by default DPM-Solver++(2M), one call per level) follows the posterior at few
  steps. With x0 | x_sigma ~ N(D, c^2) (c^2 as for dps) and y | x0 ~ N(x0, V/2 per real
  component), the posterior mean of x0 given both is D + g (y - D), g = lam c^2 / (lam c^2 + V/2):
  the exact conditional denoiser when the data are Gaussian. DiffPIR's data step (Zhu et al.
  2023) with c^2 in place of its sigma^2; NMF refitted from |y - D|^2 as in udiffse+.

Every method averages `num_samples` parallel samples. `PosteriorSettings` (in
`posterior_settings`) also holds the `udiffse-paper` preset, the published procedure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from avdiff.diffusion.denoiser import DenoiserFn
from avdiff.diffusion.formulation import DiffusionFormulation, OUVEFormulation
from avdiff.diffusion.noise import randn_like_per_item
from avdiff.config.schema import SamplerConfig
from avdiff.diffusion.samplers import (
    Step,
    reverse_diffusion_step,
    run_sampler,
    sample_predictor_corrector,
    sampler_spec,
)
from avdiff.pipeline.nmf import NoiseModel, fit_nmf
from avdiff.pipeline.posterior_settings import (
    METHOD_CHOICES,
    METHODS,
    PRESETS,
    UDIFFSE_PAPER,
    PosteriorSettings,
    resolve_method,
)

__all__ = ["METHODS", "METHOD_CHOICES", "PRESETS", "UDIFFSE_PAPER", "PosteriorOutput", "PosteriorSchedule",
           "PosteriorSettings", "enhance_spectrogram", "posterior_schedule", "power", "resolve_method"]


@dataclass
class PosteriorOutput:
    """The enhanced compressed spectrogram (B, 2, F, T), the noise model and the network calls."""

    sample: Tensor
    noise: NoiseModel
    network_calls: int


@dataclass
class PosteriorSchedule:
    """The levels a pass visits: `sigmas` (unscaled, then the end level) and their scales s(t);
    for the OUVE Euler-Maruyama predictor also g(t) per level, the step `dt` and theta."""

    sigmas: list[float]
    scales: list[float]
    diffusion: list[float] | None = None
    dt: float = 0.0
    theta: float = 0.0


def posterior_schedule(formulation: DiffusionFormulation, settings: PosteriorSettings) -> PosteriorSchedule:
    """Noise levels for `settings`: the model's schedule, or SGMSE+'s OUVE grid (any model's
    denoiser D(x; sigma) can follow it: the levels are only noise levels)."""
    form = formulation
    if settings.schedule == "ouve" and not isinstance(formulation, OUVEFormulation):
        form = OUVEFormulation(sigma_data=formulation.sigma_data)
    start = None if settings.start_sigma is None else settings.start_sigma * formulation.sigma_data
    sigmas = form.sampling_sigmas(settings.steps, sigma_start=start)
    scales = form.scale(sigmas[:-1]).tolist()
    if settings.predictor == "reverse_diffusion":
        return PosteriorSchedule(sigmas.tolist(), scales)
    assert isinstance(form, OUVEFormulation)
    times = form.time_of_sigma(sigmas[:-1])
    return PosteriorSchedule(sigmas.tolist(), scales, form.diffusion_coefficient(times).tolist(),
                             float(times[0]) / settings.steps, form.config.theta)


def nmf_updates_per_level(sigmas: Sequence[float], settings: PosteriorSettings, sigma_data: float) -> dict[float, int]:
    """NMF updates at each level (by sigma) where a one-pass method refits its noise model:
    levels at or below `nmf_refit_below` sigma_data where the likelihood runs, the last
    (to 0) excluded; `nmf_pass_updates` spread evenly over them, earlier levels taking the remainder."""
    limit = math.inf if settings.nmf_refit_below is None else settings.nmf_refit_below * sigma_data
    levels = [sigma for i, sigma in enumerate(sigmas[:-2]) if sigma <= limit and i % settings.likelihood_every == 0]
    if settings.nmf_pass_updates is None:
        return {sigma: settings.nmf_iterations for sigma in levels}
    total = max(settings.nmf_pass_updates, len(levels))
    return {sigma: total // len(levels) + (i < total % len(levels)) for i, sigma in enumerate(levels)}


def power(spec: Tensor) -> Tensor:
    """(B, 2, F, T) real view -> (B, F, T) power |.|^2."""
    return spec.square().sum(1)


class _Pass:
    """The posterior parts of one reverse pass over `num_samples` parallel samples of every item
    (batch B * R), plugged into the shared predictor-corrector loop (`sample_predictor_corrector`):
    the corrector's likelihood score, the predictor, and the likelihood step as its callback.

    The loop carries unscaled (variance-exploding) samples; the Euler-Maruyama predictor steps
    in the OUVE process's own coordinates (x_t = s(t) * unscaled), as UDiffSE integrates it.
    """

    def __init__(self, model: DenoiserFn, y: Tensor, schedule: PosteriorSchedule, settings: PosteriorSettings,
                 generators: Sequence[torch.Generator], sigma_data: float, progress: tqdm | None) -> None:
        self.model, self.schedule, self.settings = model, schedule, settings
        self.repeats = settings.num_samples
        self.y = y.repeat_interleave(self.repeats, dim=0)
        # Sample j of item b uses generator b (the parallel samples follow one another in its stream).
        self.generators = [g for g in generators for _ in range(self.repeats)]
        self.sigma_data, self.progress = sigma_data, progress
        self.likelihood, self.noise = "none", None
        self.gradient: Tensor | None = None
        self.dps_active = False
        self.calls = 0
        self.nmf_updates = nmf_updates_per_level(schedule.sigmas, settings, sigma_data)

    def variance(self) -> Tensor:
        """The complex noise variance (B*R, 1, F, T), broadcastable over the real view."""
        assert self.noise is not None
        return self.noise.variance.repeat_interleave(self.repeats, dim=0).unsqueeze(1)

    def run(self, noise: NoiseModel, likelihood: str) -> tuple[Tensor, NoiseModel]:
        """One reverse pass; likelihood is "none", "closed_form" (fixed NMF), "tweedie" or "dps"
        (NMF refitted from the denoised estimate)."""
        self.noise, self.likelihood = noise, likelihood
        self.dps_active = likelihood == "dps"
        settings = self.settings
        corrector_term = self.likelihood_score if likelihood != "none" and settings.corrector_likelihood else None
        out = sample_predictor_corrector(
            self.denoise, self.start(), torch.tensor(self.schedule.sigmas), generators=self.generators,
            callback=self.after_step, snr=settings.snr, corrector_steps=settings.corrector_steps,
            corrector_step_factor=settings.corrector_step_factor, predictor=self.predict, extra_score=corrector_term)
        self.calls += out.network_calls
        return out.sample, self.noise

    def run_denoised_likelihood(self, noise: NoiseModel) -> tuple[Tensor, NoiseModel]:
        """One diffpir pass: the settings' sampler over the posterior denoiser `denoise_posterior`."""
        self.noise, settings = noise, self.settings
        options = {"eta": settings.sampler_eta} if "eta" in sampler_spec(settings.sampler).options else {}
        config = SamplerConfig(name=settings.sampler, steps=settings.steps, options=options)
        out = run_sampler(config, self.denoise_posterior, self.start(), torch.tensor(self.schedule.sigmas),
                          self.generators, callback=self.count_step)
        self.calls += out.network_calls
        return out.sample, self.noise

    def denoise_posterior(self, x: Tensor, sigma: Tensor) -> Tensor:
        """D + g (y - D) with g = lam c^2 / (lam c^2 + V/2), after refitting the NMF from |y - D|^2."""
        denoised = self.model(x, sigma)
        level, sd, settings = float(sigma[0]), self.sigma_data, self.settings
        if self.nmf_updates.get(level, 0):
            self.noise = fit_nmf(self.residual_power(denoised), self.noise, self.nmf_updates[level])
        weighted_c2 = settings.likelihood_weight * sd**2 * level**2 / (sd**2 + level**2)
        return denoised + weighted_c2 / (weighted_c2 + self.variance() / 2) * (self.y - denoised)

    def count_step(self, step: Step) -> None:
        """The sampler callback of diffpir: progress only (the likelihood is in the denoiser)."""
        if self.progress is not None:
            self.progress.update(1)

    def start(self) -> Tensor:
        """The first (unscaled) sample: y, or y / s(t) (paper), plus sigma_0 n."""
        sigma, scale = self.schedule.sigmas[0], self.schedule.scales[0]
        mean = self.y / scale if self.settings.start_point == "scaled_observation" else self.y
        return mean + sigma * randn_like_per_item(self.y, self.generators)

    def likelihood_score(self, x: Tensor, sigma: float) -> Tensor:
        """The likelihood's score for the corrector: lambda (y - x) / (sigma^2 + V/2)."""
        return self.settings.likelihood_weight * (self.y - x) / (sigma**2 + self.variance() / 2)

    def denoise(self, x: Tensor, sigma: Tensor) -> Tensor:
        """D(x); for dps at active levels also the likelihood's gradient in x, kept for the callback."""
        if not self.dps_active:
            return self.model(x, sigma)
        with torch.enable_grad():
            x_grad = x.detach().requires_grad_(True)
            denoised = self.model(x_grad, sigma)
            level = float(sigma[0])
            c2 = self.sigma_data**2 * level**2 / (self.sigma_data**2 + level**2)
            log_lik = -0.5 * ((self.y - denoised).square() / (c2 + self.variance() / 2)).sum()
            (self.gradient,) = torch.autograd.grad(log_lik, x_grad)
        return denoised.detach()

    def predict(self, step: Step, generators: Sequence[torch.Generator]) -> Tensor:
        """The predictor from level i to level i + 1 (the last goes to the denoised estimate)."""
        if self.settings.predictor == "euler_maruyama":
            return self._euler_maruyama(step)
        return reverse_diffusion_step(step, generators)

    def _euler_maruyama(self, step: Step) -> Tensor:
        """UDiffSE's predictor, backwards by dt on dx = -theta x dt + g dw (complex w), noiseless last."""
        schedule, i = self.schedule, step.index
        assert schedule.diffusion is not None
        sigma, scale, dt, g = step.sigma, schedule.scales[i], schedule.dt, schedule.diffusion[i]
        state = step.x * scale
        score = (step.denoised - step.x) / (scale * sigma**2)  # per real component, own coordinates
        last = step.sigma_next == 0
        noise = torch.zeros_like(state) if last else randn_like_per_item(state, self.generators)
        # Complex score = half the per-component one; complex noise has variance 1/2 per component.
        state = state * (1 + schedule.theta * dt) + g**2 * dt * score / 2 + g * math.sqrt(dt / 2) * noise
        return state if last else state / schedule.scales[i + 1]  # the last state stays as UDiffSE returns it

    def after_step(self, step: Step) -> Tensor:
        """The likelihood step after level i's predictor: NMF refit, then the pull towards y."""
        settings, i, x = self.settings, step.index, step.x
        active = self.likelihood != "none" and i % settings.likelihood_every == 0
        if self.likelihood in ("tweedie", "dps") and self.nmf_updates.get(step.sigma, 0):
            self.noise = fit_nmf(self.residual_power(step.denoised), self.noise, self.nmf_updates[step.sigma])
        if active and self.likelihood in ("closed_form", "tweedie") and step.sigma_next > 0:
            x = self.pull(x, step)
        elif active and self.likelihood == "dps" and step.sigma_next > 0:
            x = x + settings.dps_weight * (step.sigma**2 - step.sigma_next**2) * self.gradient
        self.dps_active = self.likelihood == "dps" and (i + 1) % settings.likelihood_every == 0
        if self.progress is not None:
            self.progress.update(1)
        return x

    def pull(self, x: Tensor, step: Step) -> Tensor:
        """The closed-form likelihood step after the predictor of level i."""
        settings, i, sigma, variance = self.settings, step.index, step.sigma, self.variance()
        weight = settings.step_weight()
        if settings.predictor == "euler_maruyama":
            # UDiffSE: x_t += lam g^2 dt (1/s) (y - x_t / s) / (|std / s|^2 + V), s and std at level i.
            assert self.schedule.diffusion is not None
            scale, dt, g = self.schedule.scales[i], self.schedule.dt, self.schedule.diffusion[i]
            scale_next = self.schedule.scales[i + 1]
            state = x * scale_next
            gain = weight * g**2 * dt / scale / (2 * sigma**2 + variance)
            return (state + gain * (self.y - state / scale)) / scale_next
        d = sigma**2 - step.sigma_next**2
        gain = weight * d / (sigma**2 + variance / 2)
        return x + (gain.clamp(max=1.0) if settings.clamp_gain else gain) * (self.y - x)

    def finish(self, state: Tensor) -> Tensor:
        """The pass's result, averaged over the parallel samples -> (B, 2, F, T)."""
        return state.view(-1, self.repeats, *state.shape[1:]).mean(1)

    def residual_power(self, estimate: Tensor) -> Tensor:
        """|y - estimate|^2 averaged over each item's samples -> (B, F, T)."""
        residual = power(self.y - estimate)
        return residual.view(-1, self.repeats, *residual.shape[1:]).mean(1)


@torch.no_grad()
def enhance_spectrogram(
    method: str,
    denoiser_for: Callable[[int], DenoiserFn],
    y: Tensor,
    formulation: DiffusionFormulation,
    generators: Sequence[torch.Generator],
    settings: PosteriorSettings,
    show_progress: bool = False,
) -> PosteriorOutput:
    """Enhance the compressed noisy spectrograms `y` (B, 2, F, T); one generator per item.

    `denoiser_for(r)` returns the (conditioned) denoiser for a batch where every item is
    repeated r times in a row (the parallel samples run as one batch).
    """
    if method not in METHODS:
        raise ValueError(f"unknown enhancement method {method!r}; choose one of {', '.join(METHODS)}")
    if method in ("dps", "diffpir") and settings.predictor != "reverse_diffusion":
        raise ValueError(f"{method} needs the reverse_diffusion predictor (diffpir steps with settings.sampler)")
    schedule = posterior_schedule(formulation, settings)
    passes = settings.em_iterations if method == "udiffse" else 1
    progress = tqdm(total=passes * (len(schedule.sigmas) - 1), desc=method, disable=not show_progress, leave=False)
    run = _Pass(denoiser_for(settings.num_samples), y.to(torch.float32), schedule, settings, generators,
                formulation.sigma_data, progress)
    noise = NoiseModel.initial(power(y), settings.nmf_rank, list(generators), scaled=settings.nmf_init == "scaled")
    if method == "udiffse":
        for iteration in range(passes):
            state, _ = run.run(noise, "none" if iteration == 0 else "closed_form")
            noise = fit_nmf(run.residual_power(state), noise, settings.nmf_iterations)
    elif method == "diffpir":
        state, noise = run.run_denoised_likelihood(noise)
    else:
        state, noise = run.run(noise, "tweedie" if method == "udiffse+" else "dps")
    progress.close()
    return PosteriorOutput(sample=run.finish(state), noise=noise, network_calls=run.calls)
