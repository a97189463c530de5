"""`diffpir`: the likelihood applied to the denoised estimate at every network call, so any
sampler (by default DPM-Solver++(2M), one call per level) follows the posterior at few steps.

With x0 | x_sigma ~ N(D, c^2) (c^2 = sd^2 sigma^2 / (sd^2 + sigma^2)) and y | x0 ~ N(x0, V/2
per real component), the posterior mean of x0 given both is D + g (y - D),
g = lam c^2 / (lam c^2 + V/2): the exact conditional denoiser when the data are Gaussian.
DiffPIR's data step (Zhu et al. 2023) with c^2 in place of its sigma^2; the NMF noise model is
refitted from |y - D|^2 as in udiffse+.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from avdiff.config.loader import option
from avdiff.config.schema import SamplerConfig
from avdiff.diffusion.samplers import Step, run_sampler, sampler_spec
from avdiff.posterior.passes import ReversePass, RefitMixin
from avdiff.posterior.registry import register_method
from avdiff.posterior.settings import PassSettings, RefitSettings
from avdiff.posterior.udiffse_plus import UDiffSEPlus


@dataclass(frozen=True)
class DiffPIRSettings(RefitSettings, PassSettings):
    """diffpir: a sampler over the posterior denoiser."""

    sampler: str = option(
        "dpmpp_2m", "the sampler from avdiff.diffusion.samplers.SAMPLERS that follows the posterior denoiser "
        "(dpmpp_2m: one network call per level)")
    sampler_eta: float = option(0.0, "with a sampler that has an eta option: SDE strength (0 = ODE)")

    def __post_init__(self) -> None:
        super().__post_init__()
        sampler_spec(self.sampler)  # an unknown sampler is an error now, not at the first chunk


class _PosteriorDenoiserPass(RefitMixin, ReversePass):
    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - ReversePass's
        super().__init__(*args, **kwargs)
        self.nmf_updates = self.refit_plan()

    def run(self) -> Tensor:
        """The settings' sampler over the posterior denoiser `denoise_posterior`."""
        settings = self.settings
        options = {"eta": settings.sampler_eta} if "eta" in sampler_spec(settings.sampler).options else {}
        config = SamplerConfig(name=settings.sampler, steps=settings.steps, options=options)
        out = run_sampler(config, self.denoise_posterior, self.start(), torch.tensor(self.schedule.sigmas),
                          self.generators, callback=self.after_step)
        self.calls += out.network_calls
        return out.sample

    def denoise_posterior(self, x: Tensor, sigma: Tensor) -> Tensor:
        """D + g (y - D) with g = lam c^2 / (lam c^2 + V/2), after refitting the NMF from |y - D|^2."""
        denoised = self.model(x, sigma)
        level, sd = float(sigma[0]), self.sigma_data
        self.refit(level, denoised)
        weighted_c2 = self.settings.likelihood_weight * sd**2 * level**2 / (sd**2 + level**2)
        return denoised + weighted_c2 / (weighted_c2 + self.variance() / 2) * (self.y - denoised)

    def likelihood_step(self, step: Step) -> Tensor:
        return step.x  # the likelihood is in the denoiser


@register_method("diffpir")
class DiffPIR(UDiffSEPlus):
    """The likelihood in the denoiser: any sampler follows the posterior (DiffPIR's data step)."""

    settings_class = DiffPIRSettings
    pass_class = _PosteriorDenoiserPass
