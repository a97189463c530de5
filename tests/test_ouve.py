"""OUVE equals SGMSE+'s OUVE SDE, checked numerically against the paper's formulas.

SGMSE+ (Richter et al. 2023, eqs. 10-12; sgmse/sdes.py) draws complex standard normal noise
(variance 1/2 per real and imaginary part): x_t = e^(-theta t) x0 + std(t) z with
std(t)^2 = sigma_min^2 (e^(2 (theta + L) t) - 1) e^(-2 theta t) L / (theta + L),
L = ln(sigma_max / sigma_min), and g(t) = sigma_min (sigma_max / sigma_min)^t sqrt(2 L).
Its annealed Langevin corrector uses eps = 2 (snr std)^2 with x += eps score + sqrt(2 eps) z,
and its predictors integrate dx = -theta x dt + g dw backwards. Our samplers work on the real
view in unscaled coordinates (x / s(t), noise level sigma per real component).
"""

from __future__ import annotations

import math

import pytest
import torch

from avdiff.diffusion import DenoisingScoreMatchingLoss, OUVEFormulation, make_generators, sample_predictor_corrector

THETA, SIGMA_MIN, SIGMA_MAX = 1.5, 0.05, 0.5
LOG_RATIO = math.log(SIGMA_MAX / SIGMA_MIN)
DATA_STD = 0.1  # per real component


def sgmse_std(t: torch.Tensor) -> torch.Tensor:
    """SGMSE+'s marginal std(t) (complex: total variance std^2), float64."""
    t = t.double()
    return torch.sqrt(SIGMA_MIN**2 * torch.expm1(2 * (THETA + LOG_RATIO) * t) * torch.exp(-2 * THETA * t)
                      * LOG_RATIO / (THETA + LOG_RATIO))


def sgmse_g(t: torch.Tensor) -> torch.Tensor:
    return SIGMA_MIN * (SIGMA_MAX / SIGMA_MIN) ** t.double() * math.sqrt(2 * LOG_RATIO)


def gaussian_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """E[x0 | x0 + sigma n] for x0 ~ N(0, DATA_STD^2) per real component."""
    return DATA_STD**2 / (DATA_STD**2 + sigma.view(-1, 1, 1, 1) ** 2) * x


def test_marginal_std_and_diffusion_coefficient_are_sgmse():
    form = OUVEFormulation(sigma_data=DATA_STD)
    t = torch.linspace(0.03, 1.0, 40)
    sigma = form.sigma_of_time(t).double()
    scale = form.scale(form.sigma_of_time(t)).double()
    # Complex std = s * sqrt(2) * (noise level per real component).
    torch.testing.assert_close(scale * math.sqrt(2) * sigma, sgmse_std(t), rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(scale, torch.exp(-THETA * t.double()), rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(form.time_of_sigma(form.sigma_of_time(t)), t, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(form.diffusion_coefficient(t).double(), sgmse_g(t), rtol=1e-5, atol=1e-8)
    # The variance ODE of the OU process: d(std^2)/dt = -2 theta std^2 + g^2.
    h = 1e-4
    t = t.double()
    slope = (sgmse_std(t + h) ** 2 - sgmse_std(t - h) ** 2) / (2 * h)
    torch.testing.assert_close(slope, -2 * THETA * sgmse_std(t) ** 2 + sgmse_g(t) ** 2, rtol=1e-5, atol=1e-7)


def test_training_noise_is_complex_standard_normal_times_std():
    """The loss's noisy input, in the process's own coordinates, is e^(-theta t) x0 + std(t) z with
    variance std^2 / 2 per real and per imaginary part."""
    form = OUVEFormulation(sigma_data=DATA_STD)
    loss = DenoisingScoreMatchingLoss(form)
    x0 = torch.randn(20000, 2, 4, 4, generator=torch.Generator().manual_seed(0)) * DATA_STD
    seen = {}

    def recording_denoiser(noisy, sigma, cond=None, cond_mask=None):
        seen["noisy"], seen["sigma"] = noisy, sigma
        return noisy

    loss(recording_denoiser, x0, generator=torch.Generator().manual_seed(1))
    times = form.time_of_sigma(seen["sigma"])
    scale = torch.exp(-THETA * times).view(-1, 1, 1, 1)
    z = (scale * seen["noisy"] - scale * x0) / sgmse_std(times).float().view(-1, 1, 1, 1)
    assert z[:, 0].var().item() == pytest.approx(0.5, rel=0.02)  # real parts
    assert z[:, 1].var().item() == pytest.approx(0.5, rel=0.02)  # imaginary parts
    assert (z[:, 0].square() + z[:, 1].square()).mean().item() == pytest.approx(1.0, rel=0.02)


def _noise(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_corrector_step_is_sgmse_annealed_langevin():
    """One corrector step of our predictor-corrector, mapped to the process's coordinates, equals
    SGMSE+'s x += eps score_c + sqrt(2 eps) z_c, eps = 2 (snr std)^2, with the same noise draw."""
    form = OUVEFormulation(sigma_data=DATA_STD)
    t, snr, shape = torch.tensor(0.6), 0.5, (1, 2, 6, 5)
    sigma = float(form.sigma_of_time(t))
    scale, std = float(torch.exp(-THETA * t)), float(sgmse_std(t))
    x_unscaled = _noise(3, shape) * math.sqrt(DATA_STD**2 + sigma**2)
    # Ours: one corrector step at sigma, then the predictor's last step returns D(x) (Tweedie).
    out = sample_predictor_corrector(gaussian_denoiser, x_unscaled, torch.tensor([sigma, 0.0]),
                                     generators=make_generators([11]), snr=snr, corrector_steps=1).sample
    ours = scale * out / (DATA_STD**2 / (DATA_STD**2 + sigma**2))
    # SGMSE+ in the process's coordinates: complex score of N(0, 2 s^2 (sd^2 + sigma^2)) and
    # complex noise z_c = n / sqrt(2) per component, n the same draw our sampler made.
    x_s = scale * x_unscaled
    score_c = -x_s / (2 * scale**2 * (DATA_STD**2 + sigma**2))
    eps = 2 * (snr * std) ** 2
    reference = x_s + eps * score_c + math.sqrt(2 * eps) * _noise(11, shape[1:]) / math.sqrt(2)
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("t", [0.2, 0.8])
def test_predictor_matches_the_sgmse_reverse_sde_to_first_order(t):
    """Our reverse-diffusion predictor x' = A x + sqrt(V) n (mapped to the process's coordinates)
    and SGMSE+'s reverse step (x += theta x dt + g^2 score_c dt + g sqrt(dt) z_c) differ by
    O(dt^2) per step: halving dt shrinks the gap about 4 times."""
    form = OUVEFormulation(sigma_data=DATA_STD)
    gaps = []
    for dt in (0.02, 0.01):
        t_now, t_next = torch.tensor(t), torch.tensor(t - dt)
        sigma, sigma_next = float(form.sigma_of_time(t_now)), float(form.sigma_of_time(t_next))
        s, s_next = math.exp(-THETA * t), math.exp(-THETA * (t - dt))
        d = sigma**2 - sigma_next**2
        ours_a = s_next / s * (1 - d / (DATA_STD**2 + sigma**2))
        ours_v = s_next**2 * d  # per real component
        g = float(sgmse_g(t_now))
        ref_a = 1 + THETA * dt - g**2 * dt / (2 * s**2 * (DATA_STD**2 + sigma**2))
        ref_v = g**2 * dt / 2
        gaps.append((abs(ours_a - ref_a), abs(ours_v - ref_v) / ref_v))
        # Our sampler really takes that step: check A and V against a run with known noise.
        x = torch.ones(1, 2, 3, 3)
        out = sample_predictor_corrector(gaussian_denoiser, x, torch.tensor([sigma, sigma_next, 0.0]),
                                         generators=make_generators([5]), corrector_steps=0).sample
        x_next = out / (DATA_STD**2 / (DATA_STD**2 + sigma_next**2))
        expected = (ours_a * s / s_next) * x + math.sqrt(ours_v) / s_next * _noise(5, (2, 3, 3))
        torch.testing.assert_close(x_next, expected, rtol=1e-4, atol=1e-5)
    (gap_a, gap_v), (half_a, half_v) = gaps
    assert half_a < gap_a / 3 and gap_a < 0.02
    assert half_v < gap_v / 1.8 and gap_v < 0.1  # variance: first order in dt relative, still shrinking
