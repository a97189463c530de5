"""Diffusion formulations: schedules, preconditioning, training distributions, loss, save/load."""

from __future__ import annotations

import json
import math

import pytest
import torch

from avdiff.config import DiffusionConfig
from avdiff.config.schema import EDMConfig
from avdiff.diffusion import (
    DenoisingScoreMatchingLoss,
    EDMFormulation,
    OUVEFormulation,
    build_formulation,
    load_formulation,
    measure_sigma_data,
)
from avdiff.errors import ConfigError


def sgmse_ouve_std(t: torch.Tensor, theta=1.5, sigma_min=0.05, sigma_max=0.5) -> torch.Tensor:
    """SGMSE+'s OUVESDE._std(t), written out independently (float64)."""
    logsig = math.log(sigma_max / sigma_min)
    t = t.double()
    return torch.sqrt(sigma_min**2 * torch.exp(-2 * theta * t) * (torch.exp(2 * (theta + logsig) * t) - 1)
                      * logsig / (theta + logsig))


def test_edm_preconditioning_matches_karras_table():
    form = EDMFormulation(sigma_data=0.25)
    sigma = torch.tensor([0.01, 0.25, 3.0])
    c_skip, c_out, c_in, c_noise = form.precondition(sigma)
    sd = 0.25
    torch.testing.assert_close(c_skip, sd**2 / (sigma**2 + sd**2))
    torch.testing.assert_close(c_out, sigma * sd / (sigma**2 + sd**2).sqrt())
    torch.testing.assert_close(c_in, 1 / (sigma**2 + sd**2).sqrt())
    torch.testing.assert_close(c_noise, sigma.log() / 4)
    # Unit-variance network input and target: c_in^2 (sd^2 + sigma^2) = 1.
    torch.testing.assert_close(c_in**2 * (sd**2 + sigma**2), torch.ones(3))


def test_karras_sigmas_endpoints_and_order():
    sigmas = EDMFormulation().sampling_sigmas(18)
    assert len(sigmas) == 19 and sigmas[-1] == 0
    assert sigmas[0].item() == pytest.approx(80.0) and sigmas[-2].item() == pytest.approx(0.002)
    assert torch.all(sigmas.diff() < 0)
    assert EDMFormulation().sampling_sigmas(1).tolist() == pytest.approx([80.0, 0.0])


def test_ouve_matches_sgmse_marginal_std_and_inverts_time():
    form = OUVEFormulation(sigma_data=0.2)
    t = torch.linspace(0.03, 1.0, 50)
    # The process's own complex std: sqrt(2) x the noise level per real component (tests/test_ouve.py).
    std = form.scale(form.sigma_of_time(t)) * form.sigma_of_time(t) * math.sqrt(2)
    torch.testing.assert_close(std.double(), sgmse_ouve_std(t), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(form.time_of_sigma(form.sigma_of_time(t)), t, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(form.scale(form.sigma_of_time(t)), torch.exp(-1.5 * t), rtol=1e-5, atol=1e-7)
    sigmas = form.sampling_sigmas(30)
    assert sigmas[0].item() == pytest.approx(form.sigma_of_time(torch.tensor(1.0)).item())
    assert sigmas[-2].item() == pytest.approx(form.sigma_of_time(torch.tensor(0.03)).item())
    # SGMSE+ parameterisation: noise prediction from x_t in the process's own coordinates.
    c_skip, c_out, c_in, c_noise = form.precondition(sigmas[:-1])
    torch.testing.assert_close(c_out, -sigmas[:-1])
    torch.testing.assert_close(c_noise.exp(), torch.linspace(1.0, 0.03, 30), rtol=1e-4, atol=1e-6)


def test_training_noise_level_distributions():
    gen = torch.Generator().manual_seed(0)
    edm = EDMFormulation(p_mean=-1.2, p_std=1.2)
    log_sigma = edm.sample_training_sigmas(200_000, generator=gen).log()
    assert log_sigma.mean().item() == pytest.approx(-1.2, abs=0.02)
    assert log_sigma.std().item() == pytest.approx(1.2, abs=0.02)
    ouve = OUVEFormulation()
    times = ouve.time_of_sigma(ouve.sample_training_sigmas(200_000, generator=gen))
    assert times.min().item() >= 0.03 - 1e-5 and times.max().item() <= 1.0 + 1e-5
    assert times.mean().item() == pytest.approx((0.03 + 1.0) / 2, abs=0.005)  # uniform in t


def gaussian_denoiser(std: float):
    def denoise(x, sigma, cond=None, cond_mask=None):
        sigma = sigma.view(-1, *([1] * (x.dim() - 1)))
        return std**2 / (std**2 + sigma**2) * x

    return denoise


def test_edm_loss_of_the_ideal_denoiser_is_one_at_every_noise_level():
    """For N(0, s^2) data and sigma_data = s, lambda E|D* - x0|^2 = 1 exactly (EDM's unit loss)."""
    std = 0.3
    loss_fn = DenoisingScoreMatchingLoss(EDMFormulation(sigma_data=std))
    x0 = torch.randn(4096, 2, 8, 8, generator=torch.Generator().manual_seed(0)) * std
    out = loss_fn(gaussian_denoiser(std), x0, generator=torch.Generator().manual_seed(1))
    assert out.loss.item() == pytest.approx(1.0, abs=0.02)
    assert out.per_item.shape == (4096,) and out.sigma.shape == (4096,)
    # A worse denoiser (the identity) must score worse.
    worse = loss_fn(lambda x, s, **_: x, x0, generator=torch.Generator().manual_seed(1))
    assert worse.loss.item() > 1.5


def test_loss_frame_mask_ignores_padded_frames():
    loss_fn = DenoisingScoreMatchingLoss(EDMFormulation(sigma_data=0.3))
    x0 = torch.randn(2, 2, 8, 10) * 0.3
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[:, 7:] = False
    padded = x0.clone()
    padded[..., 7:] = 100.0  # garbage in the padding
    denoiser = gaussian_denoiser(0.3)

    def only_valid(x, s, **_):
        return denoiser(x, s)

    a = loss_fn(only_valid, x0, frame_mask=mask, generator=torch.Generator().manual_seed(3))
    # Frame-local denoiser: the padded frames' values cannot leak into valid frames' errors.
    b = loss_fn(only_valid, padded, frame_mask=mask, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a.per_item, b.per_item)
    c = loss_fn(only_valid, padded, generator=torch.Generator().manual_seed(3))
    assert not torch.allclose(a.per_item, c.per_item)


def test_measure_sigma_data_and_build(tmp_path):
    spectra = [torch.randn(4, 2, 16, 20) * 0.2 for _ in range(5)]
    measured = measure_sigma_data(spectra)
    assert measured == pytest.approx(0.2, rel=0.02)
    with pytest.raises(ConfigError, match="sigma_data is null"):
        build_formulation(DiffusionConfig())
    form = build_formulation(DiffusionConfig(), sigma_data=measured)
    assert isinstance(form, EDMFormulation) and form.sigma_data == pytest.approx(measured)
    ouve = build_formulation(DiffusionConfig(formulation="ouve", sigma_data=0.1))
    assert isinstance(ouve, OUVEFormulation)
    assert ouve.with_sigma_data(0.3).sigma_data == 0.3 and ouve.with_sigma_data(0.3).config.theta == 1.5


@pytest.mark.parametrize("form", [EDMFormulation(sigma_data=0.17, sigma_max=40.0), OUVEFormulation(sigma_data=0.1, theta=2.0)])
def test_formulation_save_load(tmp_path, form):
    form.save_config(tmp_path)
    loaded = load_formulation(tmp_path)
    assert type(loaded) is type(form)
    public = lambda config: {k: v for k, v in config.items() if not k.startswith("_")}  # noqa: E731
    assert public(loaded.config) == public(form.config)
    sigma = torch.tensor([0.05, 0.5])
    for a, b in zip(loaded.precondition(sigma), form.precondition(sigma)):
        assert torch.equal(a, b)


def test_edm_noise_levels_follow_sigma_data_and_travel_with_the_model(tmp_path, random_pipeline):
    """Unset (null) EDM noise levels are fixed ratios to the measured sigma_data; the values used
    are written to the model folder and read back from it."""
    from avdiff.pipeline import load_model_folder, save_model_folder

    form = build_formulation(DiffusionConfig(), sigma_data=0.09)
    assert form.sigma_max == pytest.approx(160 * 0.09) and form.sigma_min == pytest.approx(0.004 * 0.09)
    assert form.config.p_mean == pytest.approx(math.log(1.5 * 0.09)) and form.config.p_std == 1.8
    assert form.sampling_sigmas(30)[0].item() == pytest.approx(14.4)
    # The sampling range keeps EDM's image setting's ratios: at sigma_data 0.5 it is EDM's 80 / 0.002.
    image = EDMFormulation(sigma_data=0.5)
    assert (image.sigma_max, image.sigma_min) == pytest.approx((80.0, 0.002))
    # A value given in the config wins over the rule.
    explicit = build_formulation(DiffusionConfig(edm=EDMConfig(sigma_max=3.0)), sigma_data=0.09)
    assert explicit.sigma_max == 3.0 and explicit.sigma_min == pytest.approx(0.004 * 0.09)

    components = random_pipeline.components
    components.formulation = form
    folder = save_model_folder(components, tmp_path / "model")
    saved = json.loads((folder / "diffusion" / "diffusion_config.json").read_text())
    assert saved["sigma_max"] == pytest.approx(14.4) and saved["p_mean"] == pytest.approx(math.log(0.135))
    loaded = load_model_folder(folder).formulation
    assert (loaded.sigma_min, loaded.sigma_max, loaded.config.p_mean) == (form.sigma_min, form.sigma_max,
                                                                           form.config.p_mean)
