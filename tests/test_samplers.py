"""Samplers: correct distributions on a Gaussian with its exact denoiser, seeding, guidance, counts.

For data x0 ~ N(mu, s^2) per dimension, x = x0 + sigma n has the exact denoiser
E[x0 | x] = mu + s^2 / (s^2 + sigma^2) (x - mu). Started from the exact marginal at sigma_max,
a correct sampler returns samples with mean mu and variance s^2, up to its discretisation
error, which shrinks with more steps. Tolerances (32768 values per check, standard error of
the mean 0.003 and of the variance 0.8 %): |mean - mu| <= 0.015 and |var / s^2 - 1| <= 3 %
at 400 noise levels for the stochastic samplers and 60 for Heun.
"""

from __future__ import annotations

import math

import pytest
import torch

from avdiff.config import SamplerConfig
from avdiff.diffusion import (
    SAMPLERS,
    Denoiser,
    EDMFormulation,
    OUVEFormulation,
    guided_denoiser,
    initial_noise,
    make_generators,
    network_calls_per_run,
    randn_per_item,
    run_sampler,
    sample_euler_maruyama,
    sample_heun,
    sample_predictor_corrector,
    sampler_options,
)

MU, STD = 0.3, 0.5
SHAPE = (256, 2, 8, 8)


def exact_denoiser(x, sigma):
    sigma = sigma.view(-1, 1, 1, 1)
    return MU + STD**2 / (STD**2 + sigma**2) * (x - MU)


# Options under which each sampler is checked on the Gaussian (defaults unless named here), and
# the noise levels it needs for the tolerances above. A sampler missing here fails
# `test_every_registered_sampler_is_checked`: register one, and add its line.
GAUSSIAN_OPTIONS = {"edm_stochastic": {"churn": 40, "churn_sigma_min": 0.05, "churn_sigma_max": 50.0}}
CASES = [
    ("euler_maruyama", 400),
    ("predictor_corrector", 400),
    ("heun", 60),
    ("edm_stochastic", 400),
    ("dpmpp_2m", 60),
]


def run(name, sigmas, generators, x):
    config = SamplerConfig(name=name, steps=len(sigmas) - 1, options=GAUSSIAN_OPTIONS.get(name, {}))
    return run_sampler(config, exact_denoiser, x, sigmas, generators)


def test_every_registered_sampler_is_checked():
    assert sorted(SAMPLERS) == sorted(name for name, _ in CASES)


def gaussian_samples(name, formulation, steps, seed=0):
    sigmas = formulation.sampling_sigmas(steps)
    generators = make_generators(range(seed, seed + SHAPE[0]))
    x = MU + math.sqrt(STD**2 + sigmas[0].item() ** 2) * randn_per_item(SHAPE, generators)
    return run(name, sigmas, generators, x)


@pytest.mark.parametrize("formulation", [EDMFormulation(sigma_data=STD), OUVEFormulation(sigma_data=STD)],
                         ids=["edm", "ouve"])
@pytest.mark.parametrize("name,steps", CASES, ids=[c[0] for c in CASES])
def test_sampler_recovers_gaussian_mean_and_variance(name, steps, formulation):
    out = gaussian_samples(name, formulation, steps)
    assert out.sample.mean().item() == pytest.approx(MU, abs=0.015)
    assert out.sample.var().item() / STD**2 == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize("name", ["euler_maruyama", "predictor_corrector"])
def test_stochastic_samplers_converge_with_more_steps(name):
    """The variance error shrinks as steps grow: a wrong drift or noise term would not."""
    form = EDMFormulation(sigma_data=STD)
    errors = [abs(gaussian_samples(name, form, steps).sample.var().item() / STD**2 - 1) for steps in (25, 400)]
    assert errors[1] < errors[0] / 3


@pytest.mark.parametrize("formulation", [EDMFormulation(sigma_data=STD), OUVEFormulation(sigma_data=STD)],
                         ids=["edm", "ouve"])
def test_dpmpp_2m_at_few_calls_beats_heun_at_twice_the_calls(formulation):
    """DPM-Solver++(2M) at 8 calls: the mean is right and the variance error is smaller than
    Heun's at 15 calls; its SDE form (eta = 1) also reaches the distribution at 60 calls."""
    few = gaussian_samples("dpmpp_2m", formulation, 8)
    assert few.network_calls == 8
    assert few.sample.mean().item() == pytest.approx(MU, abs=0.015)
    heun = gaussian_samples("heun", formulation, 8)
    assert heun.network_calls == 15
    assert abs(few.sample.var().item() / STD**2 - 1) < abs(heun.sample.var().item() / STD**2 - 1)
    sigmas = formulation.sampling_sigmas(60)
    generators = make_generators(range(SHAPE[0]))
    x = MU + math.sqrt(STD**2 + sigmas[0].item() ** 2) * randn_per_item(SHAPE, generators)
    sde = run_sampler(SamplerConfig(name="dpmpp_2m", steps=60, options={"eta": 1.0}), exact_denoiser, x, sigmas,
                      generators).sample
    assert sde.mean().item() == pytest.approx(MU, abs=0.015)
    assert sde.var().item() / STD**2 == pytest.approx(1.0, abs=0.04)


def test_network_call_counts():
    form = EDMFormulation(sigma_data=STD)
    sigmas = form.sampling_sigmas(30)
    gens = make_generators(range(2))
    x = torch.zeros(2, 2, 4, 4)
    assert sample_euler_maruyama(exact_denoiser, x, sigmas, generators=gens).network_calls == 30
    assert sample_predictor_corrector(exact_denoiser, x, sigmas, generators=gens).network_calls == 60
    assert sample_predictor_corrector(exact_denoiser, x, sigmas, generators=gens, corrector_steps=2).network_calls == 90
    assert sample_heun(exact_denoiser, x, sigmas, generators=gens).network_calls == 59
    for name in SAMPLERS:
        config = SamplerConfig(name=name, steps=30)
        assert run_sampler(config, exact_denoiser, x, sigmas, gens).network_calls == network_calls_per_run(config)


def test_sampler_options_are_checked_against_the_registry():
    assert sampler_options("predictor_corrector", {"snr": 0.3})["snr"] == 0.3
    assert sampler_options("predictor_corrector", {})["corrector_steps"] == 1
    with pytest.raises(ValueError, match="no option 'churn'.*corrector_steps"):
        sampler_options("predictor_corrector", {"churn": 1.0})
    with pytest.raises(ValueError, match="finite int"):
        sampler_options("predictor_corrector", {"corrector_steps": 1.5})
    with pytest.raises(ValueError, match="finite float"):
        sampler_options("edm_stochastic", {"churn": float("nan")})
    with pytest.raises(ValueError, match="unknown sampler 'nope'"):
        network_calls_per_run(SamplerConfig(name="nope"))


def test_callback_sees_every_step_and_can_replace_the_sample():
    sigmas = EDMFormulation(sigma_data=STD).sampling_sigmas(5)
    x = torch.ones(2, 2, 4, 4)
    seen = []

    def zero_out(step):
        seen.append((step.index, step.sigma_next))
        return torch.zeros_like(step.x) if step.index == 4 else None

    for name in SAMPLERS:
        seen.clear()
        out = run_sampler(SamplerConfig(name=name, steps=5), exact_denoiser, x, sigmas, make_generators([1, 2]),
                          callback=zero_out)
        assert [i for i, _ in seen] == list(range(5)) and seen[-1][1] == 0.0, name
        assert torch.equal(out.sample, torch.zeros_like(x)), name


def test_invalid_sigmas_are_rejected():
    with pytest.raises(ValueError, match="ending in 0"):
        sample_heun(exact_denoiser, torch.zeros(1, 2, 4, 4), torch.tensor([2.0, 1.0]), generators=[])
    with pytest.raises(ValueError, match="decreasing"):
        sample_heun(exact_denoiser, torch.zeros(1, 2, 4, 4), torch.tensor([1.0, 2.0, 0.0]), generators=[])


# ----------------------------------------------------------------------------- with a real UNet


def unet_denoiser(tiny_unet):
    return Denoiser(tiny_unet, EDMFormulation(sigma_data=0.3, sigma_min=0.002, sigma_max=5.0))


def condition(batch, frames, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 6, frames, generator=gen)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_per_item_seeding_is_independent_of_batch_size(tiny_unet, name):
    denoiser = unet_denoiser(tiny_unet)
    stochastic = {"edm_stochastic": {"churn": 5.0}, "dpmpp_2m": {"eta": 1.0}}
    config = SamplerConfig(name=name, steps=3, options=stochastic.get(name, {}))
    sigmas = denoiser.formulation.sampling_sigmas(config.steps)
    seeds = [11, 12, 13, 14]
    cond = condition(4, 13)

    def sample(indices):
        gens = make_generators([seeds[i] for i in indices])
        x = initial_noise((len(indices), 2, 16, 13), sigmas[0].item(), gens)
        fn = guided_denoiser(denoiser, cond[indices], guidance_scale=2.0)
        return run_sampler(config, fn, x, sigmas, gens).sample

    batched = sample([0, 1, 2, 3])
    for i in range(4):
        torch.testing.assert_close(sample([i]), batched[i : i + 1], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(batched[0], batched[1])


def test_guidance_scale_one_equals_plain_conditional_sampling(tiny_unet):
    denoiser = unet_denoiser(tiny_unet)
    sigmas = denoiser.formulation.sampling_sigmas(4)
    cond = condition(2, 13)

    def sample(fn):
        gens = make_generators([5, 6])
        x = initial_noise((2, 2, 16, 13), sigmas[0].item(), gens)
        return sample_predictor_corrector(fn, x, sigmas, generators=gens)

    plain = sample(lambda x, s: denoiser(x, s, cond=cond))
    guided = sample(guided_denoiser(denoiser, cond, guidance_scale=1.0))
    assert torch.equal(plain.sample, guided.sample)
    assert plain.network_calls == guided.network_calls == 8
    # A different scale really changes the result (so the comparison above is not vacuous).
    other = sample(guided_denoiser(denoiser, cond, guidance_scale=3.0))
    assert not torch.allclose(plain.sample, other.sample)


def test_guided_denoiser_combines_conditional_and_null_branches(tiny_unet):
    denoiser = unet_denoiser(tiny_unet)
    x = torch.randn(2, 2, 16, 13)
    sigma = torch.tensor([0.7, 0.7])
    cond = condition(2, 13)
    mask = torch.ones(2, 13, dtype=torch.bool)
    mask[1, 4:] = False
    with torch.no_grad():
        d_cond = denoiser(x, sigma, cond=cond, cond_mask=mask)
        d_null = denoiser(x, sigma, cond=None)
        guided = guided_denoiser(denoiser, cond, mask, guidance_scale=2.5)(x, sigma)
    torch.testing.assert_close(guided, d_null + 2.5 * (d_cond - d_null), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="needs a condition"):
        guided_denoiser(denoiser, None, guidance_scale=2.0)


def test_guidance_in_a_limited_interval_runs_one_pass_below_it(tiny_unet):
    """Below `min_sigma` the guided denoiser is the conditional one, in one pass of the batch's size;
    at or above it, guidance as before."""
    denoiser = unet_denoiser(tiny_unet)
    x, cond = torch.randn(2, 2, 16, 13), condition(2, 13)
    mask = torch.ones(2, 13, dtype=torch.bool)
    batches = []
    hook = tiny_unet.register_forward_hook(lambda module, inputs, output: batches.append(inputs[0].shape[0]))
    guided = guided_denoiser(denoiser, cond, mask, guidance_scale=2.5, min_sigma=1.0)
    with torch.no_grad():
        low, high = torch.tensor([0.5, 0.5]), torch.tensor([1.0, 1.0])
        torch.testing.assert_close(guided(x, low), denoiser(x, low, cond=cond, cond_mask=mask))
        everywhere = guided_denoiser(denoiser, cond, mask, guidance_scale=2.5)
        torch.testing.assert_close(guided(x, high), everywhere(x, high))
    hook.remove()
    assert batches == [2, 2, 4, 4]  # low: one pass (and its reference); high: doubled, both times


def test_the_generation_plan_carries_the_guidance_interval(random_pipeline):
    plan = random_pipeline.generation_plan(guidance_scale=2.0, guidance_min_sigma=5.0)
    assert plan.sampler.guidance_min_sigma == 5.0 and plan.to_dict()["guidance_min_sigma"] == 5.0
    assert plan.describe().endswith("guidance 2 at sigma >= 5 sigma_data")
    assert random_pipeline.generation_plan().sampler.guidance_min_sigma == 0.0  # every level, as before
    with pytest.raises(ValueError, match="guidance_min_sigma"):
        random_pipeline.generation_plan(guidance_min_sigma=-1.0)
