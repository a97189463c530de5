"""Small parts of training: EMA, learning-rate schedule, condition dropout, model folder errors,
the sigma_data measurement and the logging window."""

from __future__ import annotations

import json

import pytest
import torch

from avdiff.config import SamplerConfig, SpectrogramConfig
from avdiff.diffusion import EDMFormulation
from avdiff.errors import InputError
from avdiff.models import LipEncoder, ScoreUNet
from avdiff.pipeline import ModelComponents, load_model_folder, save_model_folder
from avdiff.training.condition_dropout import drop_condition
from avdiff.training.ema import ExponentialMovingAverage
from avdiff.training.schedule import lr_multiplier


def test_ema_follows_weights_with_warmup_and_round_trips():
    model = torch.nn.Linear(3, 2)
    ema = ExponentialMovingAverage(model, decay=0.99)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # first decay: min(0.99, 1/10) = 0.1 -> mostly the new weights
    assert ema.current_decay() == pytest.approx(2 / 11)
    start = ema.module.weight.clone()
    for _ in range(200):
        ema.update(model)
    assert torch.allclose(ema.module.weight, torch.ones(2, 3), atol=1e-3)
    assert not torch.allclose(start, torch.ones(2, 3), atol=1e-3)
    restored = ExponentialMovingAverage(torch.nn.Linear(3, 2), decay=0.99)
    restored.load_state_dict(ema.state_dict())
    assert restored.num_updates == 201 and torch.equal(restored.module.weight, ema.module.weight)


def test_learning_rate_schedules():
    cosine = lr_multiplier("cosine", warmup_steps=10, max_steps=110)
    assert cosine(0) == pytest.approx(0.1) and cosine(9) == pytest.approx(1.0)
    assert cosine(60) == pytest.approx(0.5) and cosine(110) == pytest.approx(0.0, abs=1e-12)
    constant = lr_multiplier("constant", warmup_steps=4, max_steps=100)
    assert constant(1) == pytest.approx(0.5) and constant(50) == 1.0


def test_condition_dropout_rates_and_spans():
    generator = torch.Generator().manual_seed(0)
    mask = torch.ones(4000, 200, dtype=torch.bool)
    kept = drop_condition(mask, generator, item_prob=0.2, span_prob=0.5, span_max_frames=50)
    whole = (~kept).all(dim=1)
    assert whole.float().mean().item() == pytest.approx(0.2, abs=0.02)
    partial = (~kept).any(dim=1) & ~whole
    assert partial.float().mean().item() == pytest.approx(0.8 * 0.5, abs=0.03)
    for row in (~kept)[partial][:50]:  # a dropped span is one contiguous run of at most 50 frames
        idx = row.nonzero().flatten()
        assert len(idx) <= 50 and idx.max() - idx.min() + 1 == len(idx)
    already = torch.zeros(2, 10, dtype=torch.bool)  # frames without a face stay dropped
    assert not drop_condition(already, generator, 0.0, 0.0, 5).any()


def small_components() -> ModelComponents:
    torch.manual_seed(0)
    return ModelComponents(
        lip_encoder=LipEncoder.from_preset("tiny", output_dim=6),
        score_model=ScoreUNet(block_out_channels=(8, 16), attention_levels=(False, False), norm_num_groups=4,
                              attention_head_dim=8, cond_channels=6, cond_hidden_channels=8),
        formulation=EDMFormulation(sigma_data=0.07),
        spectrogram=SpectrogramConfig(),
        sampler=SamplerConfig(name="heun", steps=12),
    )


def test_model_folder_round_trip_and_missing_parts(tmp_path):
    folder = save_model_folder(small_components(), tmp_path / "model")
    loaded = load_model_folder(folder)
    assert loaded.sampler.name == "heun" and loaded.formulation.sigma_data == pytest.approx(0.07)
    index = json.loads((folder / "avdiff_pipeline.json").read_text())
    assert index["components"]["score_model"] == ["avdiff", "ScoreUNet"] and index["avdiff_version"]
    x = torch.randn(1, 2, 16, 9)
    video = torch.randint(0, 255, (1, 5, 88, 88), dtype=torch.uint8)
    original = small_components()
    with torch.no_grad():
        assert torch.equal(original.score_model.eval()(x, torch.zeros(1)), loaded.score_model(x, torch.zeros(1)))
        assert torch.equal(original.lip_encoder.eval()(video), loaded.lip_encoder(video))
    for weights in (folder / "lip_encoder").glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(InputError, match="component 'lip_encoder' has no .safetensors weights"):
        load_model_folder(folder)
    import shutil

    shutil.rmtree(folder / "diffusion")
    with pytest.raises(InputError, match=r"component 'diffusion' is missing"):
        load_model_folder(folder)
    with pytest.raises(InputError, match="not an avdiff model folder"):
        load_model_folder(tmp_path)


def test_sigma_data_maths_is_shared_and_masks_padding():
    """The trainer's masked measurement and `measure_sigma_data` use one formula (RMS over valid frames)."""
    from avdiff.diffusion.formulation import measure_sigma_data, sigma_data_from_energy, spectrogram_energy

    spec = torch.randn(2, 2, 5, 8, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[1, 5:] = False  # padding frames of a short clip
    spec[1, :, :, 5:] = 100.0  # must not count
    expected = torch.cat([spec[0].flatten(), spec[1, :, :, :5].flatten()]).double().square().mean().sqrt()
    assert sigma_data_from_energy(spectrogram_energy(spec, mask)) == pytest.approx(float(expected), rel=1e-12)
    assert measure_sigma_data([spec[:1], spec[:1]]) == pytest.approx(float(spec[0].double().square().mean().sqrt()))
    with pytest.raises(InputError, match="cannot measure sigma_data"):
        measure_sigma_data([torch.zeros(1, 2, 3, 4)])


def test_log_window_means_and_sigma_bands():
    """Each item's loss goes to the band of its noise level; a non-finite micro-batch only counts as such."""
    from avdiff.diffusion.loss import LossOutput
    from avdiff.training.trainer import LogWindow

    window = LogWindow()
    out = LossOutput(loss=torch.tensor(2.0), per_item=torch.tensor([1.0, 3.0]), sigma=torch.tensor([0.005, 5.0]))
    window.add_micro_batch(out, finite=True, items=2)
    window.add_micro_batch(out, finite=False, items=2)
    window.add_grad_norm(0.5)
    scalars = window.scalars(lr=1e-3, device=torch.device("cpu"))
    assert scalars["train/loss"] == 2.0 and scalars["train/loss_nonfinite"] == 0.5
    assert scalars["train/loss_band0"] == 1.0 and scalars["train/loss_band3"] == 3.0
    assert scalars["train/grad_norm"] == 0.5 and scalars["train/lr"] == 1e-3 and scalars["train/samples_per_s"] > 0
    window.reset()
    assert window.scalars(lr=0.0, device=torch.device("cpu")).keys() == {"train/lr", "train/samples_per_s"}
