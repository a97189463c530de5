"""The reverse pass every posterior method builds on, on the shared predictor-corrector loop.

`ReversePass` runs `num_samples` parallel samples of every item (batch B * R) through
`sample_predictor_corrector`, plugging in its predictor, its corrector's likelihood score and
its likelihood step (the loop's callback). A method subclasses it and overrides the hooks:
`likelihood_step` (after each predictor step), `corrector_score` and `denoise`.

The loop carries unscaled (variance-exploding) samples; the Euler-Maruyama predictor steps in
the OUVE process's own coordinates (x_t = s(t) * unscaled), as UDiffSE integrates it. Each real
component of y given x_sigma has variance about sigma^2 + V / 2 (V is the NMF's complex variance).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from avdiff.diffusion.noise import randn_like_per_item
from avdiff.diffusion.samplers import ScoreTerm, Step, reverse_diffusion_step, sample_predictor_corrector
from avdiff.posterior.nmf import NoiseModel, fit_nmf
from avdiff.posterior.schedule import PosteriorSchedule, nmf_updates_per_level, power

if TYPE_CHECKING:
    from avdiff.diffusion.denoiser import DenoiserFn


class ReversePass:
    """One method's reverse passes over `settings.num_samples` parallel samples of every item of `y`.

    Sample j of item b draws from generator b (the parallel samples follow one another in its
    stream); the noise model `noise` is per item and may be refitted by the hooks.
    """

    def __init__(self, model: DenoiserFn, y: Tensor, schedule: PosteriorSchedule, settings: Any,
                 generators: Sequence[torch.Generator], sigma_data: float, noise: NoiseModel,
                 progress: tqdm | None = None) -> None:
        self.model, self.schedule, self.settings = model, schedule, settings
        self.repeats = settings.num_samples
        self.y = y.repeat_interleave(self.repeats, dim=0)
        self.generators = [g for g in generators for _ in range(self.repeats)]
        self.sigma_data, self.noise, self.progress = sigma_data, noise, progress
        self.calls = 0

    # ------------------------------------------------------------------ hooks
    def denoise(self, x: Tensor, sigma: Tensor) -> Tensor:
        """D(x; sigma) as the loop sees it."""
        return self.model(x, sigma)

    def corrector_score(self) -> ScoreTerm | None:
        """An extra score the Langevin corrector adds to the prior's (None: the prior's alone)."""
        return None

    def likelihood_step(self, step: Step) -> Tensor:
        """The sample after level i's predictor, with the likelihood applied (here: none)."""
        return step.x

    def likelihood_weight(self) -> float | Tensor:
        """lambda, the likelihood's weight: one number, or one per frame (B*R, 1, 1, T)."""
        return self.settings.likelihood_weight

    # ------------------------------------------------------------------ the loop
    def run(self) -> Tensor:
        """One reverse pass from `start()`; returns the (B*R, 2, F, T) samples."""
        settings = self.settings
        out = sample_predictor_corrector(
            self.denoise, self.start(), torch.tensor(self.schedule.sigmas), generators=self.generators,
            callback=self.after_step, snr=settings.snr, corrector_steps=settings.corrector_steps,
            corrector_step_factor=settings.corrector_step_factor, predictor=self.predict,
            extra_score=self.corrector_score())
        self.calls += out.network_calls
        return out.sample

    def after_step(self, step: Step) -> Tensor:
        x = self.likelihood_step(step)
        if self.progress is not None:
            self.progress.update(1)
        return x

    def start(self) -> Tensor:
        """The first (unscaled) sample: y, or y / s(t) (paper), plus sigma_0 n."""
        sigma, scale = self.schedule.sigmas[0], self.schedule.scales[0]
        mean = self.y / scale if self.settings.start_point == "scaled_observation" else self.y
        return mean + sigma * randn_like_per_item(self.y, self.generators)

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

    # ------------------------------------------------------------------ shared parts
    def variance(self) -> Tensor:
        """The complex noise variance (B*R, 1, F, T), broadcastable over the real view."""
        return self.noise.variance.repeat_interleave(self.repeats, dim=0).unsqueeze(1)

    def likelihood_score(self, x: Tensor, sigma: float) -> Tensor:
        """The likelihood's score for the corrector: lambda (y - x) / (sigma^2 + V/2)."""
        return self.likelihood_weight() * (self.y - x) / (sigma**2 + self.variance() / 2)

    def finish(self, state: Tensor) -> Tensor:
        """The pass's result, averaged over the parallel samples -> (B, 2, F, T)."""
        return state.view(-1, self.repeats, *state.shape[1:]).mean(1)

    def residual_power(self, estimate: Tensor) -> Tensor:
        """|y - estimate|^2 averaged over each item's samples -> (B, F, T)."""
        residual = power(self.y - estimate)
        return residual.view(-1, self.repeats, *residual.shape[1:]).mean(1)

    def active(self, step: Step) -> bool:
        """Whether the likelihood step runs after level i (every `likelihood_every`-th, never the last)."""
        return step.index % self.settings.likelihood_every == 0 and step.sigma_next > 0


class PullPass(ReversePass):
    """A pass with UDiffSE's closed-form likelihood step towards y (`PullSettings`)."""

    def corrector_score(self) -> ScoreTerm | None:
        return self.likelihood_score if self.settings.corrector_likelihood else None

    def likelihood_step(self, step: Step) -> Tensor:
        return self.pull(step.x, step) if self.active(step) else step.x

    def pull(self, x: Tensor, step: Step) -> Tensor:
        """The closed-form likelihood step after the predictor of level i."""
        settings, i, sigma, variance = self.settings, step.index, step.sigma, self.variance()
        weight = settings.step_weight(self.likelihood_weight())
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


class RefitMixin:
    """Refits the noise model from |y - D(x)|^2 at the levels `nmf_updates_per_level` picks
    (`RefitSettings`); for passes whose settings have them."""

    def refit_plan(self: Any) -> dict[float, int]:
        return nmf_updates_per_level(self.schedule.sigmas, self.settings, self.sigma_data)

    def refit(self: Any, sigma: float, denoised: Tensor) -> None:
        updates = self.nmf_updates.get(sigma, 0)
        if updates:
            self.noise = fit_nmf(self.residual_power(denoised), self.noise, updates)
