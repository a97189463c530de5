"""`dps`: one pass whose likelihood step follows the gradient of log N(y; D(x), c^2 + V/2)
through the denoiser (c^2 = sd^2 sigma^2 / (sd^2 + sigma^2), the Gaussian posterior variance
of x0), scaled by d = sigma^2 - sigma_next^2 like the prior step; the NMF noise model is
refitted from the denoised estimate as in udiffse+. Backpropagates through the network at the
levels where the step runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from avdiff.config.loader import option
from avdiff.diffusion.samplers import ScoreTerm, Step
from avdiff.posterior.passes import ReversePass, RefitMixin
from avdiff.posterior.registry import register_method
from avdiff.posterior.settings import CorrectorSettings, PassSettings, RefitSettings
from avdiff.posterior.udiffse_plus import UDiffSEPlus


@dataclass(frozen=True)
class DPSSettings(CorrectorSettings, RefitSettings, PassSettings):
    """dps: the likelihood's gradient through the denoiser, the noise model refitted on the way."""

    dps_weight: float = option(1.0, "weight of the likelihood gradient step")


class _GradientPass(RefitMixin, ReversePass):
    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - ReversePass's
        super().__init__(*args, **kwargs)
        self.nmf_updates = self.refit_plan()
        self.gradient: Tensor | None = None
        self.with_gradient = True  # at level 0; then at every likelihood_every-th level

    def corrector_score(self) -> ScoreTerm | None:
        return self.likelihood_score if self.settings.corrector_likelihood else None

    def denoise(self, x: Tensor, sigma: Tensor) -> Tensor:
        """D(x); at active levels also the likelihood's gradient in x, kept for the step."""
        if not self.with_gradient:
            return self.model(x, sigma)
        with torch.enable_grad():
            x_grad = x.detach().requires_grad_(True)
            denoised = self.model(x_grad, sigma)
            level = float(sigma[0])
            c2 = self.sigma_data**2 * level**2 / (self.sigma_data**2 + level**2)
            log_lik = -0.5 * ((self.y - denoised).square() / (c2 + self.variance() / 2)).sum()
            (self.gradient,) = torch.autograd.grad(log_lik, x_grad)
        return denoised.detach()

    def likelihood_step(self, step: Step) -> Tensor:
        self.refit(step.sigma, step.denoised)
        x = step.x
        if self.active(step):
            x = x + self.settings.dps_weight * (step.sigma**2 - step.sigma_next**2) * self.gradient
        self.with_gradient = (step.index + 1) % self.settings.likelihood_every == 0
        return x


@register_method("dps")
class DPS(UDiffSEPlus):
    """Diffusion posterior sampling: the likelihood's gradient through the denoiser."""

    settings_class = DPSSettings
    pass_class = _GradientPass
