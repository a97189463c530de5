"""Diffusion posterior sampling for unsupervised speech enhancement.

The clean-speech prior (the trained score network, with the lips or the null condition) is
combined at test time with a likelihood for the noisy observation y = x + n, where n is
complex Gaussian with an NMF variance V (`avdiff.pipeline.nmf`), all on the compressed
spectrogram as UDiffSE does. Work is in the unscaled (variance-exploding) coordinates of the
samplers, where x_sigma = x0 + sigma n, so each real component of y given x_sigma has
variance about sigma^2 + V / 2.

- `udiffse`: UDiffSE's EM. E-step: a reverse-diffusion pass started at y + sigma n
  with, every `likelihood_every` levels, the closed-form likelihood step
  x <- x + min(1, lam * d / (sigma^2 + V/2)) (y - x), d = sigma^2 - sigma_next^2
  (skipped in the first EM iteration); M-step: NMF fitted to |y - x|^2 averaged over
  `num_samples` parallel samples. No backpropagation through the network.
- `udiffse+`: one reverse pass; the NMF is updated every `likelihood_every` levels from the
  residual of the denoised (Tweedie) estimate |y - D(x)|^2 and used in the same likelihood step.
- `dps`: one reverse pass; the likelihood step follows the gradient of
  log N(y; D(x), c^2 + V/2) through the denoiser (c^2 = sigma_d^2 sigma^2 / (sigma_d^2 + sigma^2),
  the Gaussian posterior variance of x0), scaled by d like the prior step; NMF as in udiffse+.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from avdiff.diffusion.denoiser import DenoiserFn
from avdiff.diffusion.noise import randn_like_per_item
from avdiff.diffusion.samplers import CallCounter
from avdiff.pipeline.nmf import NoiseModel, fit_nmf

METHODS = ("udiffse", "udiffse+", "dps")


@dataclass
class PosteriorSettings:
    """Settings of the posterior samplers.

    The defaults differ from UDiffSE's published ones in two measured ways (BENCHMARKS.md):
    the likelihood step runs at every level (UDiffSE: every 2nd) and there is no Langevin
    corrector (UDiffSE: one prior-only corrector step per level, which pulls samples away from
    the observation). `corrector_steps=1, corrector_likelihood=False, likelihood_every=2`
    reproduces the published procedure.
    """

    steps: int = 30
    snr: float = 0.5
    corrector_steps: int = 0
    corrector_likelihood: bool = True  # the corrector follows the posterior score, not the prior's
    likelihood_weight: float = 1.5  # lambda
    likelihood_every: int = 1
    nmf_rank: int = 4
    nmf_iterations: int = 5
    em_iterations: int = 5  # udiffse only
    num_samples: int = 2  # udiffse only: parallel posterior samples averaged in the M-step
    dps_weight: float = 1.0


@dataclass
class PosteriorOutput:
    """The enhanced compressed spectrogram (B, 2, F, T), the noise model and the network calls."""

    sample: Tensor
    noise: NoiseModel
    network_calls: int


def _power(spec: Tensor) -> Tensor:
    """(B, 2, F, T) real view -> (B, F, T) power |.|^2."""
    return spec.square().sum(1)


def _likelihood_step(x: Tensor, y: Tensor, sigma: float, sigma_next: float, variance: Tensor, weight: float) -> Tensor:
    """Closed-form pull towards y: x + min(1, lam d / (sigma^2 + V/2)) (y - x)."""
    d = sigma**2 - sigma_next**2
    gain = (weight * d / (sigma**2 + variance / 2)).clamp(max=1.0).unsqueeze(1)
    return x + gain * (y - x)


def _reverse_pass(
    model: CallCounter,
    y: Tensor,
    sigmas: list[float],
    generators: Sequence[torch.Generator],
    settings: PosteriorSettings,
    noise: NoiseModel,
    likelihood: str,
    sigma_data: float,
    progress: tqdm | None,
) -> tuple[Tensor, NoiseModel]:
    """One predictor-corrector pass from y + sigma_0 n with the chosen likelihood step."""
    x = y + sigmas[0] * randn_like_per_item(y, generators)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        step = 2 * (settings.snr * sigma) ** 2
        for _ in range(settings.corrector_steps):
            score = (model(x, sigma) - x) / sigma**2
            if settings.corrector_likelihood and likelihood != "none":
                score = score + settings.likelihood_weight * (y - x) / (sigma**2 + noise.variance.unsqueeze(1) / 2)
            x = x + step * score + math.sqrt(2 * step) * randn_like_per_item(x, generators)
        update = likelihood != "none" and i % settings.likelihood_every == 0
        if likelihood == "dps" and update and sigma_next > 0:
            with torch.enable_grad():
                x_grad = x.detach().requires_grad_(True)
                denoised = model(x_grad, sigma)
                c2 = sigma_data**2 * sigma**2 / (sigma_data**2 + sigma**2)
                log_lik = -0.5 * ((y - denoised).square() / (c2 + noise.variance.unsqueeze(1) / 2)).sum()
                (gradient,) = torch.autograd.grad(log_lik, x_grad)
            denoised = denoised.detach()
        else:
            denoised = model(x, sigma)
        if likelihood in ("tweedie", "dps") and update:
            noise = fit_nmf(_power(y - denoised), noise, settings.nmf_iterations)
        if sigma_next == 0:
            x = denoised
        else:
            d = sigma**2 - sigma_next**2
            x = x + d * (denoised - x) / sigma**2 + math.sqrt(d) * randn_like_per_item(x, generators)
            if update and likelihood in ("closed_form", "tweedie"):
                x = _likelihood_step(x, y, sigma, sigma_next, noise.variance, settings.likelihood_weight)
            elif update and likelihood == "dps":
                x = x + settings.dps_weight * d * gradient
        if progress is not None:
            progress.update(1)
    return x, noise


@torch.no_grad()
def enhance_spectrogram(
    method: str,
    denoiser_for: Callable[[int], DenoiserFn],
    y: Tensor,
    sigmas: Tensor,
    generators: Sequence[torch.Generator],
    settings: PosteriorSettings,
    sigma_data: float,
    show_progress: bool = False,
) -> PosteriorOutput:
    """Enhance the compressed noisy spectrograms `y` (B, 2, F, T); one generator per item.

    `denoiser_for(r)` returns the (conditioned) denoiser for a batch where every item is
    repeated r times in a row (udiffse runs its parallel samples as one batch).
    """
    if method not in METHODS:
        raise ValueError(f"unknown enhancement method {method!r}; choose one of {', '.join(METHODS)}")
    repeats = settings.num_samples if method == "udiffse" else 1
    model = CallCounter(denoiser_for(repeats))
    sigma_list = sigmas.tolist()
    noise = NoiseModel.initial(_power(y), settings.nmf_rank, list(generators))
    passes = settings.em_iterations if method == "udiffse" else 1
    progress = tqdm(total=passes * (len(sigma_list) - 1), desc=method, disable=not show_progress, leave=False)
    if method == "udiffse":
        batch = y.shape[0]
        many = repeats
        # Parallel samples of every item run as one batch; sample j of item b uses generator b, stream j.
        sample_generators = [g for g in generators for _ in range(many)]
        y_many = y.repeat_interleave(many, dim=0)
        for iteration in range(passes):
            expanded = NoiseModel(noise.W.repeat_interleave(many, 0), noise.H.repeat_interleave(many, 0))
            x, _ = _reverse_pass(model, y_many, sigma_list, sample_generators, settings, expanded,
                                 "none" if iteration == 0 else "closed_form", sigma_data, progress)
            residual = _power(y_many - x).view(batch, many, *y.shape[2:]).mean(1)
            noise = fit_nmf(residual, noise, settings.nmf_iterations)
        sample = x.view(batch, many, *y.shape[1:]).mean(1)
    else:
        likelihood = "tweedie" if method == "udiffse+" else "dps"
        sample, noise = _reverse_pass(model, y, sigma_list, generators, settings, noise, likelihood, sigma_data, progress)
    progress.close()
    return PosteriorOutput(sample=sample, noise=noise, network_calls=model.calls)
