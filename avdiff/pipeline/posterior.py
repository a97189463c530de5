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
  and used in the same likelihood step.
- `dps`: one pass; the likelihood step follows the gradient of log N(y; D(x), c^2 + V/2)
  through the denoiser (c^2 = sd^2 sigma^2 / (sd^2 + sigma^2), the Gaussian posterior
  variance of x0), scaled by d like the prior step; NMF as in udiffse+.

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
from avdiff.diffusion.samplers import CallCounter
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


def power(spec: Tensor) -> Tensor:
    """(B, 2, F, T) real view -> (B, F, T) power |.|^2."""
    return spec.square().sum(1)


class _Pass:
    """One reverse pass over `num_samples` parallel samples of every item (batch B * R)."""

    def __init__(self, model: CallCounter, y: Tensor, schedule: PosteriorSchedule, settings: PosteriorSettings,
                 generators: Sequence[torch.Generator], sigma_data: float, progress: tqdm | None) -> None:
        self.model, self.schedule, self.settings = model, schedule, settings
        self.repeats = settings.num_samples
        self.y = y.repeat_interleave(self.repeats, dim=0)
        # Sample j of item b uses generator b (the parallel samples follow one another in its stream).
        self.generators = [g for g in generators for _ in range(self.repeats)]
        self.sigma_data, self.progress = sigma_data, progress

    # -- coordinates: the reverse-diffusion state is unscaled; the Euler-Maruyama state is the
    #    OUVE process's own (x_t = s(t) * unscaled), as UDiffSE integrates it.
    def _scale(self, i: int) -> float:
        return self.schedule.scales[i] if self.settings.predictor == "euler_maruyama" else 1.0

    def _noise(self, like: Tensor) -> Tensor:
        return randn_like_per_item(like, self.generators)

    def variance_of(self, noise: NoiseModel) -> Tensor:
        """The complex noise variance (B*R, 1, F, T), broadcastable over the real view."""
        return noise.variance.repeat_interleave(self.repeats, dim=0).unsqueeze(1)

    def start(self) -> Tensor:
        """The first state: y (or y / s(t), paper) plus sigma_0 n, in the state's coordinates."""
        sigma, scale = self.schedule.sigmas[0], self.schedule.scales[0]
        mean = self.y / scale if self.settings.start_point == "scaled_observation" else self.y
        return (mean + sigma * self._noise(self.y)) * self._scale(0)

    def correct(self, state: Tensor, i: int, variance: Tensor | None) -> Tensor:
        """Annealed Langevin steps at level i (prior score, plus the likelihood's if enabled)."""
        settings, sigma, scale = self.settings, self.schedule.sigmas[i], self._scale(i)
        x = state / scale
        step = settings.corrector_step_factor * (settings.snr * sigma) ** 2
        for _ in range(settings.corrector_steps):
            score = (self.model(x, sigma) - x) / sigma**2
            if settings.corrector_likelihood and variance is not None:
                score = score + settings.likelihood_weight * (self.y - x) / (sigma**2 + variance / 2)
            x = x + step * score + math.sqrt(2 * step) * self._noise(x)
        return x * scale

    def denoise(self, state: Tensor, i: int, variance: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """D(x) at level i and, when `variance` is given (dps), the likelihood's gradient in x."""
        sigma = self.schedule.sigmas[i]
        x = state / self._scale(i)
        if variance is None:
            return self.model(x, sigma), None
        with torch.enable_grad():
            x_grad = x.detach().requires_grad_(True)
            denoised = self.model(x_grad, sigma)
            c2 = self.sigma_data**2 * sigma**2 / (self.sigma_data**2 + sigma**2)
            log_lik = -0.5 * ((self.y - denoised).square() / (c2 + variance / 2)).sum()
            (gradient,) = torch.autograd.grad(log_lik, x_grad)
        return denoised.detach(), gradient

    def predict(self, state: Tensor, denoised: Tensor, i: int) -> Tensor:
        """The predictor from level i to level i + 1 (the last goes to the denoised estimate)."""
        sigma, sigma_next = self.schedule.sigmas[i], self.schedule.sigmas[i + 1]
        if self.settings.predictor == "euler_maruyama":
            return self._euler_maruyama(state, denoised, i)
        if sigma_next == 0:
            return denoised
        d = sigma**2 - sigma_next**2
        return state + d * (denoised - state) / sigma**2 + math.sqrt(d) * self._noise(state)

    def _euler_maruyama(self, state: Tensor, denoised: Tensor, i: int) -> Tensor:
        """UDiffSE's predictor, backwards by dt on dx = -theta x dt + g dw (complex w), noiseless last."""
        schedule = self.schedule
        assert schedule.diffusion is not None
        sigma, scale, dt, g = schedule.sigmas[i], schedule.scales[i], schedule.dt, schedule.diffusion[i]
        score = (denoised - state / scale) / (scale * sigma**2)  # per real component, own coordinates
        last = i == len(schedule.sigmas) - 2
        noise = torch.zeros_like(state) if last else self._noise(state)
        # Complex score = half the per-component one; complex noise has variance 1/2 per component.
        return state * (1 + schedule.theta * dt) + g**2 * dt * score / 2 + g * math.sqrt(dt / 2) * noise

    def pull(self, state: Tensor, i: int, variance: Tensor) -> Tensor:
        """The closed-form likelihood step after the predictor of level i."""
        settings, sigma = self.settings, self.schedule.sigmas[i]
        weight = settings.step_weight()
        if settings.predictor == "euler_maruyama":
            # UDiffSE: x_t += lam g^2 dt (1/s) (y - x_t / s) / (|std / s|^2 + V), s and std at level i.
            assert self.schedule.diffusion is not None
            scale, dt, g = self.schedule.scales[i], self.schedule.dt, self.schedule.diffusion[i]
            gain = weight * g**2 * dt / scale / (2 * sigma**2 + variance)
            return state + gain * (self.y - state / scale)
        d = sigma**2 - self.schedule.sigmas[i + 1] ** 2
        gain = weight * d / (sigma**2 + variance / 2)
        return state + (gain.clamp(max=1.0) if settings.clamp_gain else gain) * (self.y - state)

    def finish(self, state: Tensor) -> Tensor:
        """The pass's result, averaged over the parallel samples -> (B, 2, F, T)."""
        return state.view(-1, self.repeats, *state.shape[1:]).mean(1)

    def residual_power(self, estimate: Tensor) -> Tensor:
        """|y - estimate|^2 averaged over each item's samples -> (B, F, T)."""
        residual = power(self.y - estimate)
        return residual.view(-1, self.repeats, *residual.shape[1:]).mean(1)


def _run_pass(run: _Pass, noise: NoiseModel, likelihood: str) -> tuple[Tensor, NoiseModel]:
    """One reverse pass; likelihood is "none", "closed_form" (fixed NMF), "tweedie" or "dps"
    (NMF refitted from the denoised estimate)."""
    settings, sigmas = run.settings, run.schedule.sigmas
    state = run.start()
    for i in range(len(sigmas) - 1):
        active = likelihood != "none" and i % settings.likelihood_every == 0
        variance = run.variance_of(noise) if likelihood != "none" else None
        state = run.correct(state, i, variance)
        denoised, gradient = run.denoise(state, i, variance if likelihood == "dps" and active else None)
        refit_ok = settings.nmf_refit_below is None or sigmas[i] <= settings.nmf_refit_below * run.sigma_data
        if likelihood in ("tweedie", "dps") and active and refit_ok:
            noise = fit_nmf(run.residual_power(denoised), noise, settings.nmf_iterations)
            variance = run.variance_of(noise)
        state = run.predict(state, denoised, i)
        if active and likelihood in ("closed_form", "tweedie") and sigmas[i + 1] > 0:
            state = run.pull(state, i, variance)
        elif active and gradient is not None and sigmas[i + 1] > 0:
            state = state + settings.dps_weight * (sigmas[i] ** 2 - sigmas[i + 1] ** 2) * gradient
        if run.progress is not None:
            run.progress.update(1)
    return state, noise


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
    if method == "dps" and settings.predictor != "reverse_diffusion":
        raise ValueError("dps needs the reverse_diffusion predictor")
    schedule = posterior_schedule(formulation, settings)
    model = CallCounter(denoiser_for(settings.num_samples))
    passes = settings.em_iterations if method == "udiffse" else 1
    progress = tqdm(total=passes * (len(schedule.sigmas) - 1), desc=method, disable=not show_progress, leave=False)
    run = _Pass(model, y.to(torch.float32), schedule, settings, generators, formulation.sigma_data, progress)
    noise = NoiseModel.initial(power(y), settings.nmf_rank, list(generators), scaled=settings.nmf_init == "scaled")
    if method == "udiffse":
        for iteration in range(passes):
            state, _ = _run_pass(run, noise, "none" if iteration == 0 else "closed_form")
            noise = fit_nmf(run.residual_power(state), noise, settings.nmf_iterations)
    else:
        state, noise = _run_pass(run, noise, "tweedie" if method == "udiffse+" else "dps")
    progress.close()
    return PosteriorOutput(sample=run.finish(state), noise=noise, network_calls=model.calls)
