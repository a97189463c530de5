"""Posterior samplers on Gaussian data with the exact denoiser (no network, no training).

x0 ~ N(0, SD^2) and y = x0 + n, n ~ N(0, V/2) per real component, so the exact posterior
mean is SD^2 / (SD^2 + V/2) y. The samplers are approximate (UDiffSE's likelihood step is a
heuristic); these tests pin down what each part of them must do.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from avdiff.diffusion import EDMFormulation, OUVEFormulation, make_generators
from avdiff.errors import ConfigError
from avdiff.posterior import PosteriorProblem, method_entry, nmf_updates_per_level, posterior_schedule
from avdiff.posterior.diffpir import DiffPIRSettings, _PosteriorDenoiserPass
from avdiff.posterior.nmf import NoiseModel
from avdiff.posterior.passes import PullPass, ReversePass
from avdiff.posterior.udiffse import UDIFFSE_PAPER, UDiffSESettings
from avdiff.posterior.udiffse_plus import UDiffSEPlusSettings

SD = 0.1
V = 2 * SD**2  # complex noise variance: 0 dB SNR
SHAPE = (256, 2, 8, 8)
FORMULATION = EDMFormulation(sigma_data=SD)


def exact_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return SD**2 / (SD**2 + sigma.view(-1, 1, 1, 1) ** 2) * x


def gaussian_pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x0 = torch.randn(SHAPE, generator=generator) * SD
    return x0, x0 + torch.randn(SHAPE, generator=generator) * math.sqrt(V / 2)


def known_noise(y: torch.Tensor) -> NoiseModel:
    """The true noise variance V at every bin (never refitted)."""
    return NoiseModel(torch.ones(len(y), SHAPE[2], 1), torch.full((len(y), 1, SHAPE[3]), V))


def one_pass(settings: UDiffSESettings, y: torch.Tensor, likelihood: bool) -> torch.Tensor:
    """One pass with the closed-form likelihood step (`likelihood`) or the prior alone, known noise."""
    schedule = posterior_schedule(FORMULATION, settings)
    kind = PullPass if likelihood else ReversePass
    run = kind(exact_denoiser, y, schedule, settings, make_generators(range(len(y))), SD, known_noise(y))
    return run.finish(run.run())


def enhance(method: str, y: torch.Tensor, seeds, **options) -> torch.Tensor:
    """`method` on y with the exact denoiser, through the registry as the pipeline runs it."""
    entry = method_entry(method)
    problem = PosteriorProblem(y, lambda repeats: exact_denoiser, FORMULATION, make_generators(seeds))
    return entry.method_class(entry.settings(options)).run(problem).sample


def regression(out: torch.Tensor, y: torch.Tensor) -> float:
    return float((out * y).sum() / (y * y).sum())


def test_paper_predictor_and_corrector_sample_the_prior():
    """UDiffSE's Euler-Maruyama + Langevin pass (no likelihood) from t = 1 returns samples of
    the data distribution: std SD within 5 %, whatever model schedule the denoiser came from."""
    settings = replace(UDIFFSE_PAPER, num_samples=1)
    out = one_pass(settings, torch.zeros(SHAPE), False)
    assert float(out.std()) == pytest.approx(SD, rel=0.05)
    without_corrector = one_pass(replace(settings, corrector_steps=0), torch.zeros(SHAPE), False)
    assert float(without_corrector.std()) == pytest.approx(SD, rel=0.05)


AT_30 = UDiffSESettings(steps=30)


def test_likelihood_step_pulls_towards_the_posterior():
    x0, y = gaussian_pair()
    # The step's weighting was calibrated at 30 levels (at 12, with d = sigma^2 - sigma_next^2
    # larger, the same lambda pulls harder: 0.73 here against the exact 0.5).
    exact = SD**2 / (SD**2 + V / 2)
    ours = regression(one_pass(replace(AT_30, num_samples=1), y, True), y)
    paper = regression(one_pass(replace(UDIFFSE_PAPER, num_samples=1), y, True), y)
    prior_only = regression(one_pass(replace(AT_30, num_samples=1), y, False), y)
    assert abs(prior_only) < 0.1  # started at y but the prior forgot it: start at 10 sigma_data
    assert exact - 0.1 < ours < exact + 0.2
    assert 0.2 < paper < exact  # lambda per step every 2nd level: half the total weight
    # lambda is the total weight: every 2nd level with the rescaled weight pulls as hard.
    every2 = regression(one_pass(replace(AT_30, num_samples=1, likelihood_every=2), y, True), y)
    assert every2 == pytest.approx(ours, abs=0.06)
    weaker = replace(AT_30, num_samples=1, likelihood_every=2, rescale_likelihood=False)
    assert regression(one_pass(weaker, y, True), y) < ours - 0.1


def test_every_method_averages_its_parallel_samples():
    """Averaging K posterior samples divides their spread around the posterior mean by about K."""
    x0, y = gaussian_pair(1)
    y = y[:64]
    for method in ("udiffse+", "udiffse", "dps"):
        spreads = []
        for samples in (1, 4):
            options = {"num_samples": samples, "steps": 10, **({"em_iterations": 2} if method == "udiffse" else {})}
            outs = [enhance(method, y, [seed * 1000 + i for i in range(len(y))], **options) for seed in range(2)]
            spreads.append(float((outs[0] - outs[1]).square().mean()))
        assert spreads[1] < spreads[0] / 2.5, (method, spreads)


def test_udiffse_paper_preset_is_the_published_procedure():
    entry = method_entry("udiffse-paper")
    settings = entry.settings()
    assert entry.method_class.name == "udiffse" and entry.is_preset and not method_entry("udiffse").is_preset
    assert (settings.steps, settings.em_iterations, settings.num_samples, settings.likelihood_every) == (30, 5, 2, 2)
    assert (settings.corrector_steps, settings.corrector_step_factor, settings.corrector_likelihood) == (1, 1.0, False)
    assert (settings.nmf_iterations, settings.likelihood_weight, settings.step_weight()) == (1, 1.5, 1.5)
    schedule = posterior_schedule(FORMULATION, settings)
    ouve = OUVEFormulation(sigma_data=SD)
    times = ouve.time_of_sigma(torch.tensor(schedule.sigmas[:-1]))
    assert times[0].item() == pytest.approx(1.0) and times[-1].item() == pytest.approx(0.03, abs=1e-5)
    assert schedule.dt == pytest.approx(1 / 30) and schedule.theta == 1.5
    assert schedule.diffusion == pytest.approx(ouve.diffusion_coefficient(times).tolist())
    with pytest.raises(ConfigError, match="unknown posterior method 'udiffse\\+\\+'; registered: av-udiffse, diffpir, dps"):
        method_entry("udiffse++")
    with pytest.raises(ValueError, match="predictor must be one of"):
        UDiffSESettings(predictor="euler")
    with pytest.raises(ValueError, match="set schedule='ouve'"):
        UDiffSEPlusSettings(predictor="euler_maruyama")


def test_the_av_udiffse_reference_presets() -> None:
    """av-udiffse is udiffse-paper's EM with 4 samples; fudiffse-paper is one 30-level pass of the same
    sampler with one NMF update from the denoised estimate at every likelihood level."""
    paper, av = method_entry("udiffse-paper").settings(), method_entry("av-udiffse").settings()
    assert method_entry("av-udiffse").method_class.name == "udiffse" and av.num_samples == 4
    assert replace(av, num_samples=2) == paper
    fast = method_entry("fudiffse-paper")
    settings = fast.settings()
    assert fast.method_class.name == "udiffse+" and fast.is_preset
    for name in ("steps", "schedule", "predictor", "corrector_steps", "likelihood_weight", "likelihood_every",
                 "nmf_init", "num_samples", "normalize", "start_point", "clamp_gain"):
        assert getattr(settings, name) == getattr(paper, name), name
    levels = posterior_schedule(FORMULATION, settings).sigmas
    assert nmf_updates_per_level(levels, settings, SD) == {sigma: 1 for sigma in levels[:-2:2]}


def diffpir(y: torch.Tensor, steps: int, sampler: str = "dpmpp_2m", eta: float = 0.0, weight: float = 1.0,
            start: float | None = None) -> torch.Tensor:
    """diffpir with the exact denoiser and the true noise variance (never refitted)."""
    settings = DiffPIRSettings(num_samples=1, steps=steps, sampler=sampler, sampler_eta=eta, start_sigma=start,
                               likelihood_weight=weight, nmf_refit_below=0.0)
    schedule = posterior_schedule(FORMULATION, settings)
    run = _PosteriorDenoiserPass(exact_denoiser, y, schedule, settings, make_generators(range(len(y))), SD,
                                 known_noise(y))
    state = run.run()
    assert run.calls == (steps if sampler != "heun" else 2 * steps - 1)
    return run.finish(state)


@pytest.mark.parametrize("sampler,eta,steps", [("dpmpp_2m", 0.0, 8), ("dpmpp_2m", 1.0, 8), ("heun", 0.0, 6)])
def test_diffpir_reaches_the_exact_posterior_mean_at_few_calls(sampler, eta, steps):
    """With a Gaussian prior the posterior denoiser is exact, so samples from the largest level
    have the posterior mean g y, g = SD^2 / (SD^2 + V/2), at 8 (Heun: 11) network calls."""
    x0, y = gaussian_pair(2)
    gain = SD**2 / (SD**2 + V / 2)
    assert regression(diffpir(y, steps, sampler, eta), y) == pytest.approx(gain, abs=0.01)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_diffpir_spread_converges_to_the_posterior_variance(eta):
    """The spread around g y is the posterior variance g V/2 within 7 % at 60 calls, and an
    ODE started at 10 sigma_data instead keeps part of its start y: the mean leans towards y."""
    x0, y = gaussian_pair(2)
    gain = SD**2 / (SD**2 + V / 2)
    out = diffpir(y, 60, eta=eta)
    assert float((out - gain * y).var()) == pytest.approx(gain * V / 2, rel=0.07)
    assert regression(diffpir(y, 60, eta=0.0, start=10.0), y) > gain + 0.02


def test_diffpir_likelihood_weight_and_method_checks():
    """lam > 1 trusts the observation more (output nearer y); options diffpir does not have (the
    predictor, the corrector) and an unknown sampler are refused before anything runs."""
    x0, y = gaussian_pair(3)
    plain, heavy = regression(diffpir(y, 8), y), regression(diffpir(y, 8, weight=3.0), y)
    assert heavy > plain + 0.1
    for option in ("predictor", "corrector_steps", "em_iterations"):
        with pytest.raises(ConfigError, match=f"unknown key '{option}'"):
            method_entry("diffpir").settings({option: 1})
    with pytest.raises(ConfigError, match="unknown sampler 'nope'"):
        method_entry("diffpir").settings({"sampler": "nope"})


def test_nmf_updates_are_spread_over_the_refit_levels():
    """A pass's NMF updates: the budget split evenly (earlier levels take the remainder) over
    the levels at or below nmf_refit_below sigma_data where the likelihood runs, never the last."""
    sigmas = [8.0, 4.0, 2.0, 1.0, 0.5, 0.25, 0.0]  # in units of sigma_data = 1
    plan = nmf_updates_per_level(sigmas, UDiffSEPlusSettings(nmf_pass_updates=10, nmf_refit_below=3.0), 1.0)
    assert plan == {2.0: 4, 1.0: 3, 0.5: 3}
    every2 = nmf_updates_per_level(sigmas, UDiffSEPlusSettings(nmf_pass_updates=10, likelihood_every=2), 1.0)
    assert every2 == {2.0: 5, 0.5: 5}
    assert nmf_updates_per_level(sigmas, UDiffSEPlusSettings(nmf_pass_updates=1, nmf_refit_below=None), 1.0) == {
        s: 1 for s in sigmas[:-2]}  # at least one update per refit level
    per_level = UDiffSEPlusSettings(nmf_pass_updates=None, nmf_iterations=2, nmf_refit_below=3.0)
    assert nmf_updates_per_level(sigmas, per_level, 1.0) == {2.0: 2, 1.0: 2, 0.5: 2}
