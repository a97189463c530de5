"""The score-based diffusion core: formulations, denoiser, loss and samplers."""

from avdiff.diffusion.denoiser import Denoiser, DenoiserFn, guided_denoiser
from avdiff.diffusion.formulation import (
    DiffusionFormulation,
    EDMFormulation,
    OUVEFormulation,
    Preconditioning,
    build_formulation,
    karras_sigmas,
    load_formulation,
    measure_sigma_data,
)
from avdiff.diffusion.loss import DenoisingScoreMatchingLoss, LossOutput
from avdiff.diffusion.noise import make_generators, randn_like_per_item, randn_per_item
from avdiff.diffusion.samplers import (
    SAMPLERS,
    SamplerOutput,
    SamplerSpec,
    Step,
    initial_noise,
    network_calls_per_run,
    register_sampler,
    run_sampler,
    sampler_options,
    sampler_spec,
    sample_edm_stochastic,
    sample_euler_maruyama,
    sample_heun,
    sample_predictor_corrector,
)

__all__ = [
    "SAMPLERS",
    "Denoiser",
    "DenoiserFn",
    "DenoisingScoreMatchingLoss",
    "DiffusionFormulation",
    "EDMFormulation",
    "LossOutput",
    "OUVEFormulation",
    "Preconditioning",
    "SamplerOutput",
    "SamplerSpec",
    "Step",
    "build_formulation",
    "guided_denoiser",
    "initial_noise",
    "karras_sigmas",
    "load_formulation",
    "make_generators",
    "measure_sigma_data",
    "network_calls_per_run",
    "randn_like_per_item",
    "randn_per_item",
    "register_sampler",
    "run_sampler",
    "sample_edm_stochastic",
    "sample_euler_maruyama",
    "sample_heun",
    "sample_predictor_corrector",
    "sampler_options",
    "sampler_spec",
]
