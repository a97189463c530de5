"""The noise levels a posterior pass visits, and where a one-pass method refits its noise model."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import Tensor

if TYPE_CHECKING:
    from avdiff.diffusion.formulation import DiffusionFormulation


@dataclass
class PosteriorSchedule:
    """The levels a pass visits: `sigmas` (unscaled, then the end level) and their scales s(t);
    for the OUVE Euler-Maruyama predictor also g(t) per level, the step `dt` and theta."""

    sigmas: list[float]
    scales: list[float]
    diffusion: list[float] | None = None
    dt: float = 0.0
    theta: float = 0.0


def posterior_schedule(formulation: DiffusionFormulation, settings: Any) -> PosteriorSchedule:
    """Noise levels for `settings` (a `PassSettings`): the model's schedule, or SGMSE+'s OUVE grid
    (any model's denoiser D(x; sigma) can follow it: the levels are only noise levels)."""
    from avdiff.diffusion.formulation import OUVEFormulation  # diffusers' config classes: loaded when sampling

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


def nmf_updates_per_level(sigmas: Sequence[float], settings: Any, sigma_data: float) -> dict[float, int]:
    """NMF updates at each level (by sigma) where a one-pass method refits its noise model
    (`settings`: `RefitSettings` and `PassSettings`): levels at or below `nmf_refit_below`
    sigma_data where the likelihood runs, the last (to 0) excluded; `nmf_pass_updates` spread
    evenly over them, earlier levels taking the remainder. None where the noise model is held
    (`noise_model: tracked`)."""
    if getattr(settings, "noise_model", "refit") != "refit":
        return {}
    limit = math.inf if settings.nmf_refit_below is None else settings.nmf_refit_below * sigma_data
    levels = [sigma for i, sigma in enumerate(sigmas[:-2]) if sigma <= limit and i % settings.likelihood_every == 0]
    if settings.nmf_pass_updates is None:
        return {sigma: settings.nmf_iterations for sigma in levels}
    total = max(settings.nmf_pass_updates, len(levels))
    return {sigma: total // len(levels) + (i < total % len(levels)) for i, sigma in enumerate(levels)}


def power(spec: Tensor) -> Tensor:
    """(B, 2, F, T) real view -> (B, F, T) power |.|^2."""
    return spec.square().sum(1)
