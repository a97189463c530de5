"""The score-based diffusion core: formulations, denoiser, loss and samplers.

The names below load on first use (PEP 562): `avdiff.diffusion.samplers` (the registry the
commands list their choices from) then imports without the formulations' diffusers config classes.
"""

from __future__ import annotations

from avdiff.lazy import lazy_exports

_EXPORTS = {
    "Denoiser": "avdiff.diffusion.denoiser",
    "DenoiserFn": "avdiff.diffusion.denoiser",
    "DenoisingScoreMatchingLoss": "avdiff.diffusion.loss",
    "DiffusionFormulation": "avdiff.diffusion.formulation",
    "FORMULATIONS": "avdiff.diffusion.formulation_registry",
    "EDMFormulation": "avdiff.diffusion.formulation",
    "LossOutput": "avdiff.diffusion.loss",
    "OUVEFormulation": "avdiff.diffusion.formulation",
    "Preconditioning": "avdiff.diffusion.formulation",
    "SAMPLERS": "avdiff.diffusion.samplers",
    "SamplerOutput": "avdiff.diffusion.samplers",
    "SamplerSpec": "avdiff.diffusion.samplers",
    "Step": "avdiff.diffusion.samplers",
    "build_formulation": "avdiff.diffusion.formulation",
    "guided_denoiser": "avdiff.diffusion.denoiser",
    "initial_noise": "avdiff.diffusion.samplers",
    "karras_sigmas": "avdiff.diffusion.formulation",
    "load_formulation": "avdiff.diffusion.formulation",
    "make_generators": "avdiff.diffusion.noise",
    "measure_sigma_data": "avdiff.diffusion.formulation",
    "network_calls_per_run": "avdiff.diffusion.samplers",
    "randn_like_per_item": "avdiff.diffusion.noise",
    "randn_per_item": "avdiff.diffusion.noise",
    "register_sampler": "avdiff.diffusion.samplers",
    "run_sampler": "avdiff.diffusion.samplers",
    "sample_dpmpp_2m": "avdiff.diffusion.samplers",
    "sample_edm_stochastic": "avdiff.diffusion.samplers",
    "sample_euler_maruyama": "avdiff.diffusion.samplers",
    "sample_heun": "avdiff.diffusion.samplers",
    "sample_predictor_corrector": "avdiff.diffusion.samplers",
    "sampler_options": "avdiff.diffusion.samplers",
    "sampler_spec": "avdiff.diffusion.samplers",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
