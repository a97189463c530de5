"""The score UNet: sizes, exact lengths, null/masked conditioning, save/load, precision."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avdiff.config import AVDiffConfig, load_config
from avdiff.diffusion import Denoiser, EDMFormulation, OUVEFormulation, load_formulation
from avdiff.models import ScoreUNet

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_shipped_model_sizes():
    tiny = ScoreUNet.from_avdiff_config(load_config(AVDiffConfig, CONFIG_DIR / "tiny.yaml").score_model)
    assert count(tiny) <= 2_000_000
    with torch.device("meta"):
        big = ScoreUNet.from_avdiff_config(load_config(AVDiffConfig, CONFIG_DIR / "ncsnpp.yaml").score_model)
    assert 45_000_000 <= count(big) <= 65_000_000


@pytest.mark.parametrize("bins,frames", [(16, 13), (17, 1), (9, 31), (32, 64)])
def test_any_size_comes_back_exactly(tiny_unet, bins, frames):
    x = torch.randn(2, 2, bins, frames)
    cond = torch.randn(2, 6, frames)
    with torch.no_grad():
        out = tiny_unet(x, torch.zeros(2), cond=cond)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_fully_masked_condition_equals_null_condition(tiny_unet):
    x = torch.randn(3, 2, 16, 13)
    noise = torch.randn(3)
    cond = torch.randn(3, 6, 13)
    with torch.no_grad():
        null = tiny_unet(x, noise, cond=None)
        masked = tiny_unet(x, noise, cond=cond, cond_mask=torch.zeros(3, 13, dtype=torch.bool))
        conditioned = tiny_unet(x, noise, cond=cond)
    assert torch.equal(null, masked)
    assert not torch.allclose(null, conditioned, atol=1e-4)  # the condition does matter


def test_frame_mask_replaces_only_masked_frames(tiny_unet):
    cond = torch.randn(2, 6, 13)
    mask = torch.ones(2, 13, dtype=torch.bool)
    mask[0, 3:7] = False
    applied = tiny_unet.condition.apply_null(cond, mask, 2, 13)
    null = tiny_unet.condition.null_embedding
    assert torch.equal(applied[0, :, 3:7], null[:, None].expand(6, 4))
    assert torch.equal(applied[0, :, :3], cond[0, :, :3]) and torch.equal(applied[1], cond[1])


def test_condition_is_time_aligned(tiny_unet):
    """Changing the condition at the last frames changes the output most at those frames."""
    x = torch.randn(1, 2, 16, 64)
    cond = torch.randn(1, 6, 64)
    changed = cond.clone()
    changed[..., 56:] += 3.0
    with torch.no_grad():
        diff = (tiny_unet(x, torch.zeros(1), cond=cond) - tiny_unet(x, torch.zeros(1), cond=changed)).abs()
    per_frame = diff.mean(dim=(0, 1, 2))
    assert per_frame[56:].mean() > 5 * per_frame[:32].mean()


def test_wrong_condition_shape_is_a_clear_error(tiny_unet):
    with pytest.raises(ValueError, match=r"condition must be \(batch, 6, frames\)"):
        tiny_unet(torch.randn(1, 2, 16, 13), torch.zeros(1), cond=torch.randn(1, 6, 12))


@pytest.mark.parametrize("formulation", [EDMFormulation(sigma_data=0.2), OUVEFormulation(sigma_data=0.2)])
def test_save_load_gives_bit_identical_outputs(tmp_path, tiny_unet, formulation):
    with torch.no_grad():
        for p in tiny_unet.parameters():  # move away from init so a re-init could not match
            p.add_(0.01 * torch.randn_like(p))
    tiny_unet.save_pretrained(tmp_path / "score_model")
    formulation.save_config(tmp_path / "diffusion")
    files = sorted(p.name for p in (tmp_path / "score_model").iterdir())
    assert files == ["config.json", "diffusion_pytorch_model.safetensors"]  # no pickle
    loaded = Denoiser(ScoreUNet.from_pretrained(tmp_path / "score_model").eval(), load_formulation(tmp_path / "diffusion"))
    original = Denoiser(tiny_unet, formulation)
    x, sigma = torch.randn(2, 2, 16, 21), torch.tensor([0.1, 0.4])
    cond, mask = torch.randn(2, 6, 21), torch.rand(2, 21) > 0.3
    with torch.no_grad():
        assert torch.equal(loaded(x, sigma, cond, mask), original(x, sigma, cond, mask))


def test_denoiser_output_is_float32_under_autocast(tiny_unet):
    denoiser = Denoiser(tiny_unet, EDMFormulation(sigma_data=0.2))
    x = torch.randn(1, 2, 16, 13)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = denoiser(x, torch.tensor([0.5]), cond=torch.randn(1, 6, 13))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_denoiser_is_exact_at_zero_network_output():
    """With F = 0, D = c_skip x: checks the preconditioning is wired as D = c_skip x + c_out F."""

    class Zero(torch.nn.Module):
        def forward(self, sample, noise_level, cond=None, cond_mask=None):
            return torch.zeros_like(sample)

    form = EDMFormulation(sigma_data=0.5)
    x = torch.randn(2, 2, 4, 4)
    sigma = torch.tensor([0.5, 2.0])
    expected = (0.25 / (sigma**2 + 0.25)).view(-1, 1, 1, 1) * x
    torch.testing.assert_close(Denoiser(Zero(), form)(x, sigma), expected)
