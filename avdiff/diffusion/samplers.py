"""Samplers: small pure functions over a denoiser, k-diffusion style.

Each takes `denoiser(x, sigma) -> x0_hat` (condition and guidance already bound, see
`guided_denoiser`), the starting sample `x` at `sigmas[0]`, and the decreasing noise levels
`sigmas` ending in 0 (from `DiffusionFormulation.sampling_sigmas`). They work in the unscaled
coordinates of the formulation (variance exploding, `x = x0 + sigma n`), where the reverse SDE
is `dx = -2 sigma score dsigma + sqrt(2 sigma |dsigma|) dW` and the probability-flow ODE is
`dx/dsigma = (x - D(x; sigma)) / sigma`, with `score = (D - x) / sigma^2`. The step to
sigma = 0 is the denoised estimate itself (Tweedie), as SGMSE+ returns its last `x_mean`.

Randomness comes from per-item generators (`randn_like_per_item`), so the same seed gives
the same sample at any batch size. Each sampler returns the sample and its network calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from avdiff.config.schema import SamplerConfig
from avdiff.diffusion.denoiser import DenoiserFn
from avdiff.diffusion.noise import randn_like_per_item, randn_per_item


@dataclass
class SamplerOutput:
    """The final sample (B, ...) and how many times the denoiser (network) was called."""

    sample: Tensor
    network_calls: int


class CallCounter:
    """Wraps a denoiser, counting calls and handing it a (B,) sigma tensor."""

    def __init__(self, denoiser: DenoiserFn) -> None:
        self.denoiser = denoiser
        self.calls = 0

    def __call__(self, x: Tensor, sigma: Tensor | float) -> Tensor:
        self.calls += 1
        sigma_batch = torch.full((x.shape[0],), float(sigma), dtype=torch.float32, device=x.device)
        return self.denoiser(x, sigma_batch)


def _steps(sigmas: Tensor, progress: bool, name: str) -> tqdm:
    if sigmas.dim() != 1 or len(sigmas) < 2 or float(sigmas[-1]) != 0.0 or bool((sigmas.diff() >= 0).any()):
        raise ValueError(f"sigmas must be a 1-D strictly decreasing sequence ending in 0, got {sigmas.tolist()}")
    return tqdm(range(len(sigmas) - 1), desc=name, disable=not progress, leave=False)


def initial_noise(
    shape: Sequence[int], sigma_max: float, generators: Sequence[torch.Generator], device: torch.device | str = "cpu"
) -> Tensor:
    """The starting sample sigma_max * n of the unscaled (variance-exploding) process."""
    return sigma_max * randn_per_item(shape, generators, device=device)


@torch.no_grad()
def sample_euler_maruyama(
    denoiser: DenoiserFn,
    x: Tensor,
    sigmas: Tensor,
    generators: Sequence[torch.Generator],
    progress: bool = False,
) -> SamplerOutput:
    """Euler-Maruyama on the reverse SDE; one network call per noise level."""
    model = CallCounter(denoiser)
    sigma_list = sigmas.tolist()
    for i in _steps(sigmas, progress, "euler-maruyama"):
        sigma, sigma_next = sigma_list[i], sigma_list[i + 1]
        denoised = model(x, sigma)
        if sigma_next == 0:
            x = denoised
            continue
        step = sigma - sigma_next
        x = x + 2 * step * (denoised - x) / sigma + math.sqrt(2 * sigma * step) * randn_like_per_item(x, generators)
    return SamplerOutput(x, model.calls)


@torch.no_grad()
def sample_predictor_corrector(
    denoiser: DenoiserFn,
    x: Tensor,
    sigmas: Tensor,
    generators: Sequence[torch.Generator],
    snr: float = 0.5,
    corrector_steps: int = 1,
    progress: bool = False,
) -> SamplerOutput:
    """SGMSE+'s predictor-corrector: annealed Langevin corrector, then reverse-diffusion predictor.

    Corrector (per level, `corrector_steps` times): step = 2 (snr sigma)^2,
    `x += step * score + sqrt(2 step) n`. Predictor: with d = sigma^2 - sigma_next^2,
    `x += d * score + sqrt(d) n`. 30 levels and 1 corrector step = 60 network calls.
    """
    model = CallCounter(denoiser)
    sigma_list = sigmas.tolist()
    for i in _steps(sigmas, progress, "predictor-corrector"):
        sigma, sigma_next = sigma_list[i], sigma_list[i + 1]
        step = 2 * (snr * sigma) ** 2
        for _ in range(corrector_steps):
            score = (model(x, sigma) - x) / sigma**2
            x = x + step * score + math.sqrt(2 * step) * randn_like_per_item(x, generators)
        denoised = model(x, sigma)
        if sigma_next == 0:
            x = denoised
            continue
        variance_step = sigma**2 - sigma_next**2
        x = x + variance_step * (denoised - x) / sigma**2 + math.sqrt(variance_step) * randn_like_per_item(x, generators)
    return SamplerOutput(x, model.calls)


@torch.no_grad()
def sample_edm_stochastic(
    denoiser: DenoiserFn,
    x: Tensor,
    sigmas: Tensor,
    generators: Sequence[torch.Generator] | None = None,
    churn: float = 0.0,
    churn_sigma_min: float = 0.0,
    churn_sigma_max: float = float("inf"),
    noise_inflation: float = 1.0,
    progress: bool = False,
) -> SamplerOutput:
    """EDM Algorithm 2: Heun steps on the probability-flow ODE with optional noise churn.

    At levels in [churn_sigma_min, churn_sigma_max] the noise is raised from sigma to
    sigma (1 + gamma), gamma = min(churn / N, sqrt(2) - 1), before the Heun step.
    With churn = 0 this is EDM Algorithm 1 (deterministic Heun): 2N - 1 network calls.
    """
    model = CallCounter(denoiser)
    sigma_list = sigmas.tolist()
    num_steps = len(sigma_list) - 1
    for i in _steps(sigmas, progress, "edm" if churn > 0 else "heun"):
        sigma, sigma_next = sigma_list[i], sigma_list[i + 1]
        gamma = min(churn / num_steps, math.sqrt(2) - 1) if churn_sigma_min <= sigma <= churn_sigma_max else 0.0
        sigma_hat = sigma * (1 + gamma)
        if gamma > 0:
            if generators is None:
                raise ValueError("churn > 0 needs per-item generators")
            extra = math.sqrt(sigma_hat**2 - sigma**2) * noise_inflation
            x = x + extra * randn_like_per_item(x, generators)
        slope = (x - model(x, sigma_hat)) / sigma_hat
        x_next = x + (sigma_next - sigma_hat) * slope
        if sigma_next != 0:
            slope_next = (x_next - model(x_next, sigma_next)) / sigma_next
            x_next = x + (sigma_next - sigma_hat) * (slope + slope_next) / 2
        x = x_next
    return SamplerOutput(x, model.calls)


@torch.no_grad()
def sample_heun(denoiser: DenoiserFn, x: Tensor, sigmas: Tensor, progress: bool = False) -> SamplerOutput:
    """EDM Algorithm 1: deterministic Heun (2nd order) on the probability-flow ODE."""
    return sample_edm_stochastic(denoiser, x, sigmas, generators=None, churn=0.0, progress=progress)


SamplerFn = Callable[..., SamplerOutput]

SAMPLERS: dict[str, SamplerFn] = {
    "euler_maruyama": sample_euler_maruyama,
    "predictor_corrector": sample_predictor_corrector,
    "heun": sample_heun,
    "edm_stochastic": sample_edm_stochastic,
}


def run_sampler(
    config: SamplerConfig,
    denoiser: DenoiserFn,
    x: Tensor,
    sigmas: Tensor,
    generators: Sequence[torch.Generator],
    progress: bool = False,
) -> SamplerOutput:
    """Run the sampler a `SamplerConfig` names, with that config's settings."""
    if config.name == "euler_maruyama":
        return sample_euler_maruyama(denoiser, x, sigmas, generators, progress=progress)
    if config.name == "predictor_corrector":
        return sample_predictor_corrector(
            denoiser, x, sigmas, generators, config.snr, config.corrector_steps, progress=progress
        )
    if config.name == "heun":
        return sample_heun(denoiser, x, sigmas, progress=progress)
    if config.name == "edm_stochastic":
        return sample_edm_stochastic(
            denoiser,
            x,
            sigmas,
            generators,
            config.churn,
            config.churn_sigma_min,
            config.churn_sigma_max,
            config.noise_inflation,
            progress=progress,
        )
    raise ValueError(f"unknown sampler {config.name!r}; choose one of {sorted(SAMPLERS)}")


def network_calls_per_run(config: SamplerConfig) -> int:
    """Network calls a sampler run with `config` makes (before guidance doubles the batch)."""
    per_level = {"euler_maruyama": 1, "predictor_corrector": 1 + config.corrector_steps}
    if config.name in per_level:
        return per_level[config.name] * config.steps
    return 2 * config.steps - 1
