"""Denoising score matching with the formulation's own noise-level distribution and weighting."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from avdiff.diffusion.formulation import DiffusionFormulation


@dataclass
class LossOutput:
    """The batch loss, the per-item losses and their noise levels (for per-sigma-band logging);
    `auxiliary` holds other (detached) terms that a training model added to `loss`, by name."""

    loss: Tensor
    per_item: Tensor
    sigma: Tensor
    auxiliary: dict[str, Tensor] = field(default_factory=dict)


class DenoisingScoreMatchingLoss:
    """E_sigma,n [ lambda(sigma) |D(x0 + sigma n; sigma, cond) - x0|^2 ].

    sigma is drawn from the formulation's training distribution, lambda is its weighting.
    `frame_mask` (B, T) excludes padded spectrogram frames from the average. `target(x, sigma)`,
    when given, replaces x0 as what D must give (guidance distillation: a teacher's guided D).
    """

    def __init__(self, formulation: DiffusionFormulation) -> None:
        self.formulation = formulation

    def __call__(
        self,
        denoiser: Callable[..., Tensor],
        x0: Tensor,
        cond: Tensor | None = None,
        cond_mask: Tensor | None = None,
        frame_mask: Tensor | None = None,
        generator: torch.Generator | None = None,
        target: Callable[[Tensor, Tensor], Tensor] | None = None,
    ) -> LossOutput:
        x0 = x0.to(torch.float32)
        sigma = self.formulation.sample_training_sigmas(x0.shape[0], device=x0.device, generator=generator)
        gen_device = generator.device if generator is not None else x0.device
        noise = torch.randn(x0.shape, generator=generator, device=gen_device, dtype=torch.float32).to(x0.device)
        noisy = x0 + sigma.view(-1, *([1] * (x0.dim() - 1))) * noise
        wanted = x0 if target is None else target(noisy, sigma).to(torch.float32)
        denoised = denoiser(noisy, sigma, cond=cond, cond_mask=cond_mask)
        squared = (denoised.to(torch.float32) - wanted).square()
        if frame_mask is None:
            per_item = squared.flatten(1).mean(1)
        else:
            weights = frame_mask.to(squared.dtype).view(x0.shape[0], *([1] * (x0.dim() - 2)), -1)
            weights = weights.expand_as(squared)
            per_item = (squared * weights).flatten(1).sum(1) / weights.flatten(1).sum(1).clamp_min(1.0)
        per_item = self.formulation.loss_weight(sigma) * per_item
        return LossOutput(loss=per_item.mean(), per_item=per_item.detach(), sigma=sigma.detach())
