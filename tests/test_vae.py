"""The VAE baselines: the speech VAE learns, Monte-Carlo EM enhances with it, the switching VAE
drops lips that do not fit, and a VAE model folder runs through `avdiff enhance` like a diffusion one.

The toy speech: frames of one of two spectral templates (A: low bins, B: high bins) at random
gains; the toy lips say which one (a one-hot). A VAE trained on it in a second or two."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from avdiff.cli import main
from avdiff.errors import InputError
from avdiff.models.speech_vae import SpeechVAE
from avdiff.posterior.registry import method_entry
from avdiff.posterior.switching_vae import forward_backward
from avdiff.posterior.vae_base import VAEProblem

BINS = 16


def templates() -> torch.Tensor:
    """(2, F) the two toy spectra (variances): A's energy in the low bins, B's in the high ones."""
    low = torch.exp(-torch.arange(BINS, dtype=torch.float32) / 3)
    return torch.stack([low + 1e-3, low.flip(0) + 1e-3])


def toy_frames(count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Speech powers (N, F) drawn from the templates at random gains, their template (N,) and lips (N, 2)."""
    which = torch.randint(0, 2, (count,), generator=generator)
    gain = torch.exp(torch.randn(count, 1, generator=generator))
    variance = gain * templates()[which]
    real, imag = (torch.randn(2, count, BINS, generator=generator) * (variance / 2).sqrt())
    return real**2 + imag**2, which, torch.nn.functional.one_hot(which, 2).float()


def train_toy_vae(audio_visual: bool, steps: int = 300) -> tuple[SpeechVAE, list[float]]:
    """A tiny VAE fitted to the toy frames (lips dropped on 30 % of frames); the loss every step."""
    torch.manual_seed(0)
    vae = SpeechVAE(num_bins=BINS, latent_dim=2, hidden_dims=(32,), cond_dim=2 if audio_visual else 0, cond_hidden=8)
    optimizer = torch.optim.Adam(vae.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(steps):
        power, _, lips = toy_frames(256, generator)
        mask = torch.rand(256, generator=generator) > 0.3
        features = vae.condition_features(lips, mask)
        reconstruction, kl = vae(power, features, torch.randn(256, 2, generator=generator))
        loss = (reconstruction + kl).mean() / BINS
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return vae.eval(), losses


@pytest.fixture(scope="module")
def av_vae() -> SpeechVAE:
    return train_toy_vae(audio_visual=True)[0]


def test_the_elbo_falls_on_a_toy_set() -> None:
    _, losses = train_toy_vae(audio_visual=False, steps=150)
    assert np.mean(losses[-20:]) < np.mean(losses[:20]) - 0.5, (losses[:3], losses[-3:])


def planted_mixture(frames: int = 120, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Toy speech plus noise whose variance is a planted rank-1 NMF (a flat-ish spectrum whose level
    rises over time): (noisy power (F, T), clean power (F, T), the noise's spectral shape (F,), lips (T, 2))."""
    generator = torch.Generator().manual_seed(seed)
    speech, _, lips = toy_frames(frames, generator)
    shape = 0.05 + 0.1 * torch.rand(BINS, generator=generator)
    level = torch.linspace(0.5, 2.0, frames)
    noise_variance = shape[:, None] * level[None, :]
    speech_stft = torch.polar(speech.T.sqrt(), 2 * torch.pi * torch.rand(BINS, frames, generator=generator))
    noise_stft = torch.complex(*(torch.randn(2, BINS, frames, generator=generator) * (noise_variance / 2).sqrt()))
    return (speech_stft + noise_stft).abs().square(), speech.T, shape, lips


def run_method(name: str, vae: SpeechVAE, power: torch.Tensor, lips: torch.Tensor | None = None,
               mask: torch.Tensor | None = None, **options: object):
    entry = method_entry(name)
    method = entry.method_class(entry.settings({"em_iterations": 30, "mh_steps": 20, "mh_kept": 5, "nmf_rank": 1,
                                                "tolerance": 0, **options}))
    return method.run(VAEProblem(power, vae, torch.Generator().manual_seed(1), lips, mask))


def test_em_raises_the_likelihood_and_recovers_a_planted_noise(av_vae: SpeechVAE) -> None:
    noisy, clean, shape, lips = planted_mixture()
    out = run_method("vae-mcem", av_vae, noisy, lips, torch.ones(len(lips), dtype=torch.bool))
    assert out.costs[-1] < out.costs[0] - 0.05, out.costs[:3]
    fitted = out.noise.W[0, :, 0]
    cosine = float(fitted @ shape / (fitted.norm() * shape.norm()))
    assert cosine > 0.95, cosine
    estimate = out.wiener_gain**2 * noisy
    assert (estimate.log1p() - clean.log1p()).abs().mean() < (noisy.log1p() - clean.log1p()).abs().mean()
    assert out.network_calls == 1 + 31 * 20 and out.switch is None


def test_the_switch_picks_the_audio_only_model_where_the_lips_are_wrong(av_vae: SpeechVAE) -> None:
    """Lips of the other template (another speaker's mouth): audio-only on every such frame; lips
    replaced by noise: audio-only wherever the noise does not happen to say the right template
    (2-dimensional toy lips say one of the two about half the time)."""
    noisy, _, _, lips = planted_mixture(frames=160, seed=3)
    swapped, noise = lips.clone(), lips.clone()
    swapped[80:] = lips[80:].flip(1)
    noise[80:] = torch.randn(80, 2, generator=torch.Generator().manual_seed(5)) * 3
    usable = torch.ones(160, dtype=torch.bool)
    for wrong, most in ((swapped, 0.05), (noise, 0.45)):
        switch = run_method("switching-vae", av_vae, noisy, wrong, usable).switch
        assert switch is not None and switch.shape == (160,)
        assert float(switch[:80].mean()) > 0.9 and float(switch[80:].mean()) < most, (switch[:80].mean(),
                                                                                         switch[80:].mean())
    control = run_method("switching-vae", av_vae, noisy, lips, usable).switch
    assert control is not None and float(control.mean()) > 0.9


def test_frames_without_usable_lips_are_audio_only(av_vae: SpeechVAE) -> None:
    noisy, _, _, lips = planted_mixture(frames=60, seed=4)
    mask = torch.ones(60, dtype=torch.bool)
    mask[:20] = False
    out = run_method("switching-vae", av_vae, noisy, lips, mask, em_iterations=3)
    assert out.switch is not None and float(out.switch[:20].max()) == 0.0


def test_forward_backward_follows_the_evidence_and_smooths_it() -> None:
    evidence = np.zeros((9, 2))
    evidence[:4, 0], evidence[5:, 1] = 5.0, 5.0  # frame 4 says nothing
    posterior = forward_backward(evidence, stay=0.9, prior=0.5)
    assert (posterior[:4] > 0.99).all() and (posterior[5:] < 0.01).all() and 0.05 < posterior[4] < 0.95


def test_bad_vae_settings_are_clear_errors() -> None:
    with pytest.raises(Exception, match="mh_kept"):
        method_entry("vae-mcem").settings({"mh_kept": 50, "mh_steps": 40})
    with pytest.raises(Exception, match="switch_stay"):
        method_entry("switching-vae").settings({"switch_stay": 1.0})


# ---------------------------------------------------------------------------------------- folders and the CLI
@pytest.fixture(scope="module")
def vae_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An audio-visual VAE folder on the real STFT (256 bins) with the tiny lip encoder, untrained."""
    from avdiff.config import EnhancementConfig, SpectrogramConfig
    from avdiff.models import LipEncoder
    from avdiff.pipeline.vae_folder import VAEComponents, save_vae_folder

    torch.manual_seed(0)
    components = VAEComponents(LipEncoder.from_preset("tiny", output_dim=8), SpeechVAE(num_bins=256, latent_dim=4,
                               hidden_dims=(16,), cond_dim=8, cond_hidden=8), SpectrogramConfig(),
                               EnhancementConfig(method="vae-mcem", options={"em_iterations": 3, "mh_steps": 4,
                                                                             "mh_kept": 2}), crop_size=32)
    return save_vae_folder(components, tmp_path_factory.mktemp("vae") / "model")


def test_a_vae_folder_round_trips_and_opens_as_a_vae_pipeline(vae_folder: Path, tmp_path: Path) -> None:
    from avdiff.pipeline.loading import load_pipeline
    from avdiff.pipeline.vae_pipeline import VAEPipeline

    pipe = load_pipeline(vae_folder)
    assert isinstance(pipe, VAEPipeline) and pipe.components.audio_visual
    copy = pipe.save_pretrained(tmp_path / "copy")
    again = load_pipeline(copy)
    for a, b in zip(pipe.vae.state_dict().values(), again.vae.state_dict().values()):
        assert torch.equal(a, b)
    noisy = 0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    first, second = (p.enhance(noisy, sample_rate=16000, seed=3) for p in (pipe, again))
    assert np.array_equal(first.audio, second.audio) and first.audio.shape == (16000,)
    assert first.network_calls == 1 + 4 * 4  # the folder's options: 3 EM iterations and a last E-step of 4 steps


def test_a_vae_model_refuses_what_it_cannot_do(vae_folder: Path, tmp_path: Path) -> None:
    from avdiff.pipeline.loading import load_pipeline
    from avdiff.pipeline.pipeline import AVDiffusionPipeline

    pipe = load_pipeline(vae_folder)
    with pytest.raises(InputError, match="runs on a diffusion model, and this is a vae model"):
        pipe.enhancement_plan("udiffse+")
    with pytest.raises(InputError, match="does not generate"):
        pipe.generate(np.zeros((25, 32, 32), np.uint8))
    with pytest.raises(InputError, match="a speech VAE .AVVAEPipeline., not a diffusion model"):
        AVDiffusionPipeline.from_pretrained(vae_folder)
    index = json.loads((vae_folder / "avdiff_pipeline.json").read_text())
    broken = tmp_path / "broken"
    import shutil

    shutil.copytree(vae_folder, broken)
    (broken / "avdiff_pipeline.json").write_text(json.dumps({**index, "enhancement": {"method": "udiffse+"}}))
    with pytest.raises(InputError, match="is a diffusion method"):
        load_pipeline(broken)


def test_enhance_runs_a_vae_folder_like_a_diffusion_one(vae_folder: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    noisy, videos, out = tmp_path / "noisy", tmp_path / "videos", tmp_path / "enhanced"
    noisy.mkdir()
    videos.mkdir()
    rng = np.random.default_rng(0)
    sf.write(noisy / "good.wav", 0.1 * rng.standard_normal(16000), 16000)
    sf.write(noisy / "stereo.wav", 0.1 * rng.standard_normal((16000, 2)), 16000)
    (noisy / "corrupt.wav").write_bytes(b"RIFF" + bytes(range(256)) * 4)
    for name in ("good", "stereo", "corrupt"):
        np.save(videos / f"{name}.npy", rng.integers(0, 256, (25, 40, 40), dtype=np.uint8))
    code = main(["enhance", "--model", str(vae_folder), "--noisy", str(noisy), "--video", str(videos),
                 "--output", str(out), "--method", "switching-vae", "--em-iterations", "2"])
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err
    failed = {json.loads(line)["id"] for line in (out / "failures.jsonl").read_text().splitlines()}
    assert failed == {"corrupt"}
    audio, rate = sf.read(out / "good.wav")
    assert rate == 16000 and audio.shape == (16000,) and np.isfinite(audio).all()
    assert sf.read(out / "stereo.wav")[0].shape == (16000, 2)
    report = json.loads((out / "good.switch.json").read_text())
    assert len(report["audio_visual_probability"]) == 126 and report["frame_rate_hz"] == 125
    settings = (out / "enhance_settings.yaml").read_text()
    assert "switching-vae" in settings and "em_iterations: 2" in settings


# ---------------------------------------------------------------------------------------- training
VAE_RUN = ["data.crop_frames=32", "data.crop_size=32", "data.num_workers=0", "data.hflip_prob=0",
           "training.batch_size=4", "training.checkpoint_every=1000", "training.objective=vae",
           "training.learning_rate=1e-2", "training.validate_every=2", "training.validation_batches=1",
           "training.validation_samples=0", "vae.latent_dim=4", "vae.hidden_dims=[16]", "vae.cond_hidden=8",
           "enhancement.method=vae-mcem", "lip_encoder.preset=tiny"]


def test_avdiff_train_trains_an_audio_visual_vae_on_frozen_lips(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from avdiff.config import AVDiffConfig, load_config
    from avdiff.models import LipEncoder
    from avdiff.pipeline.loading import load_pipeline
    from avdiff.training.trainer import train
    from tinycorpus import make_tiny_corpus

    manifest = make_tiny_corpus(tmp_path / "data", num_items=8, num_frames=12, size=32)
    torch.manual_seed(0)
    lips = tmp_path / "lips"
    LipEncoder.from_preset("tiny", output_dim=64).save_pretrained(lips)
    config = load_config(AVDiffConfig, None, [f"data.train_manifest={manifest}", f"data.valid_manifest={manifest}",
                                              f"lip_encoder.pretrained={lips}", "lip_encoder.train=false", *VAE_RUN])
    result = train(config, tmp_path / "run", max_steps=4, cpu=True)
    model = result.model_dir
    before, after = load_file(str(lips / "diffusion_pytorch_model.safetensors")), \
        load_file(str(model / "lip_encoder" / "diffusion_pytorch_model.safetensors"))
    assert all(torch.equal(before[k], after[k]) for k in before)  # the lips stayed frozen
    log = (tmp_path / "run" / "train.log").read_text()
    assert "validation loss_av" in log and "loss_audio_only" in log and "SpeechVAE" in log
    pipe = load_pipeline(model)
    assert pipe.components.audio_visual and pipe.components.vae.config.latent_dim == 4
    untrained = SpeechVAE(num_bins=256, latent_dim=4, hidden_dims=(16,), cond_dim=64, cond_hidden=8)
    assert any(not torch.equal(a, b) for a, b in zip(untrained.state_dict().values(), pipe.vae.state_dict().values()))


def test_an_audio_visual_vae_needs_trained_lips() -> None:
    from avdiff.config import AVDiffConfig, load_config
    from avdiff.errors import ConfigError

    with pytest.raises((ConfigError, ValueError), match="lip_encoder.pretrained"):
        load_config(AVDiffConfig, None, ["training.objective=vae", "enhancement.method=vae-mcem"])


@pytest.mark.parametrize("name", ["speech-vae", "av-vae"])
def test_the_shipped_vaes_load_and_enhance(name: str, tmp_path: Path) -> None:
    from avdiff.pipeline.loading import load_pipeline
    from avdiff.pipeline.shipped import shipped_models_dir
    from avdiff.pipeline.vae_pipeline import VAEPipeline

    folder = shipped_models_dir() / name
    if not (folder / "avdiff_pipeline.json").is_file():
        pytest.fail(f"the shipped model {folder} is missing (see models/README.md)")
    pipe = load_pipeline(name)
    assert isinstance(pipe, VAEPipeline) and pipe.enhancement_plan().method == "vae-mcem"
    assert pipe.components.audio_visual == (name == "av-vae")
    assert sum(p.numel() * p.element_size() for p in pipe.vae.parameters()) < 25e6
    noisy = (0.1 * np.random.default_rng(0).standard_normal(8000)).astype(np.float32)
    out = pipe.enhance(noisy, sample_rate=16000, options={"em_iterations": 2, "mh_steps": 3, "mh_kept": 1})
    assert out.audio.shape == (8000,) and np.isfinite(out.audio).all() and out.network_calls == 1 + 3 * 3


def test_a_config_names_a_method_of_the_model_it_trains() -> None:
    from avdiff.config import AVDiffConfig, load_config
    from avdiff.errors import ConfigError

    with pytest.raises((ConfigError, ValueError), match="runs on a diffusion model, but this config trains a vae"):
        load_config(AVDiffConfig, "vae-speech-cpu", ["enhancement.method=udiffse+"])
    with pytest.raises((ConfigError, ValueError), match="runs on a vae model, but this config trains a diffusion"):
        load_config(AVDiffConfig, "tiny", ["enhancement.method=vae-mcem"])
