"""What udiffse+ takes from the input's own noise (issue 26): the held noise model, the Wiener
output, the input given back, the adaptive start and its record, and a clean input left alone."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from avdiff.audio.spectrogram import SpectrogramTransform
from avdiff.cli import main
from avdiff.diffusion import EDMFormulation, make_generators
from avdiff.posterior import PosteriorProblem, method_entry
from avdiff.posterior.input_noise import Compression, InputNoise, input_share, mix_in_input, wiener
from test_noise_tracking import speech_like

SD = 0.1
FORMULATION = EDMFormulation(sigma_data=SD)


def exact_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return SD**2 / (SD**2 + sigma.view(-1, 1, 1, 1) ** 2) * x


def noisy_batch(noise_std: float, seed: int = 0) -> torch.Tensor:
    """(2, 2, 16, 64): Gaussian 'speech' of std SD on half the frames plus noise of `noise_std`."""
    generator = torch.Generator().manual_seed(seed)
    speech = torch.randn(2, 2, 16, 64, generator=generator) * SD
    speech[..., ::2] = 0.0
    return speech + torch.randn(2, 2, 16, 64, generator=generator) * noise_std


def run_udiffse_plus(y: torch.Tensor, **options):
    entry = method_entry("udiffse+")
    problem = PosteriorProblem(y, lambda repeats: exact_denoiser, FORMULATION, make_generators([0, 1]))
    return entry.method_class(entry.settings({"steps": 4, **options})).run(problem)


def test_compression_round_trips_and_matches_the_transform() -> None:
    transform = SpectrogramTransform()
    compression = Compression.default()
    y = transform.encode(torch.randn(1, 8000) * 0.1)
    linear = transform.decompress(transform.to_complex(y))
    assert torch.allclose(compression.linear_power(y), linear.abs().square(), rtol=1e-4, atol=1e-9)
    assert torch.allclose(compression.compressed(compression.linear(y)), y, atol=1e-5)


def test_input_share_and_mixing_give_the_input_back_above_the_threshold() -> None:
    assert input_share(torch.tensor([0.0, 8.0, 13.0, 18.0, 40.0]), 8.0, 18.0).tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    y, estimate = torch.randn(2, 2, 4, 5), torch.randn(2, 2, 4, 5)
    mixed = mix_in_input(y, estimate, torch.tensor([1.0, 0.0]), Compression.default())
    assert torch.allclose(mixed[0], y[0], atol=1e-5) and torch.allclose(mixed[1], estimate[1], atol=1e-5)


def test_the_wiener_gain_kept_at_subtraction_never_lowers_it() -> None:
    y = torch.randn(1, 2, 8, 10)
    speech, variance = torch.rand(1, 8, 10) * 0.1, torch.rand(1, 8, 10)
    plain, kept = wiener(y, speech, variance), wiener(y, speech, variance, keep_subtraction=True)
    assert (kept.square().sum(1) >= plain.square().sum(1) - 1e-7).all()
    assert (kept.square().sum(1) <= y.square().sum(1) + 1e-6).all()  # a gain, never above 1
    assert not torch.allclose(kept, plain)


def test_tracked_noise_is_held_and_reported() -> None:
    y = noisy_batch(0.05)
    out = run_udiffse_plus(y, noise_model="tracked")
    heard = InputNoise.of(y, Compression.default())
    assert torch.allclose(out.noise.variance, heard.variance, rtol=1e-5)
    assert set(out.report) >= {"snr_db", "frame_snr_db", "start_sigma"} and len(out.report["snr_db"]) == 2
    refitted = run_udiffse_plus(y)
    assert not torch.allclose(refitted.noise.variance, heard.variance, rtol=0.1)
    assert "snr_db" not in refitted.report


def test_adaptive_start_is_lower_for_a_quieter_input() -> None:
    loud, quiet = (run_udiffse_plus(noisy_batch(std), start_noise_multiple=2.0) for std in (0.2, 0.002))
    loud_start, quiet_start = loud.report["start_sigma"][0], quiet.report["start_sigma"][0]
    assert quiet_start < loud_start <= 10.0 and quiet_start >= 0.1
    fixed = run_udiffse_plus(noisy_batch(0.002))
    assert fixed.report["start_sigma"] == [10.0, 10.0]


def test_a_clean_input_is_given_back_and_a_noisy_one_is_enhanced() -> None:
    clean = noisy_batch(1e-5)
    out = run_udiffse_plus(clean, input_mix_from_db=8.0, input_mix_full_db=18.0)
    assert out.report["input_share"] == [1.0, 1.0]
    assert torch.allclose(out.sample, clean, atol=1e-5)
    noisy = run_udiffse_plus(noisy_batch(0.1), input_mix_from_db=8.0, input_mix_full_db=18.0)
    assert max(noisy.report["input_share"]) < 1.0 and not torch.allclose(noisy.sample, noisy_batch(0.1), atol=1e-3)


def test_an_input_given_back_whole_costs_no_network_call_and_changes_nothing(monkeypatch) -> None:
    """Where every item is given back whole the pass is skipped: the output is bit for bit what it
    is after the pass; one item still to enhance runs the pass for the batch."""
    from avdiff.posterior.udiffse_plus import UDiffSEPlus

    mix = {"input_mix_from_db": 8.0, "input_mix_full_db": 18.0, "noise_model": "tracked", "wiener_output": True}
    clean = noisy_batch(1e-5)
    skipped = run_udiffse_plus(clean, **mix)
    monkeypatch.setattr(UDiffSEPlus, "gives_all_back", lambda self, problem, share: False)
    after_pass = run_udiffse_plus(clean, **mix)
    monkeypatch.undo()
    assert skipped.network_calls == 0 and after_pass.network_calls == 4
    assert torch.equal(skipped.sample, after_pass.sample)
    assert skipped.report["input_share"] == after_pass.report["input_share"] == [1.0, 1.0]
    assert torch.equal(skipped.noise.variance, after_pass.noise.variance)
    one_noisy = torch.cat([clean[:1], noisy_batch(0.1)[1:]])
    assert run_udiffse_plus(one_noisy, **mix).network_calls == 4
    # udiffse+lips keeps the sample itself on reliable lip frames: with lips it never skips the pass.
    from types import SimpleNamespace

    entry, all_back = method_entry("udiffse+lips"), torch.ones(2)
    for keeps, lips, skips in ((True, object(), False), (True, None, True), (False, object(), True)):
        method = entry.method_class(entry.settings({**mix, "refit_on_lip_frames": keeps}))
        assert method.gives_all_back(SimpleNamespace(lips=lips), all_back) is skips


def test_a_mix_window_decides_per_window_as_chunks_of_that_length_would() -> None:
    """With `input_mix_window_frames`, a long chunk whose first part is clean and last part noisy
    gives the first part back and enhances the last, each window's share being the one a chunk of
    that window alone gets; without it, one share for the whole chunk."""
    from avdiff.audio.chunks import ENHANCEMENT_OVERLAP_FRAMES, plan_chunks

    rng = np.random.default_rng(3)
    clean, noisy = speech_like(2.0, rng), speech_like(2.0, rng)
    noisy = noisy + 0.3 * float(np.std(noisy)) * rng.standard_normal(len(noisy))
    y = SpectrogramTransform().encode(torch.from_numpy(np.concatenate([clean, noisy])).float()[None])
    y = torch.cat([y, y])  # two items: the shares are per item
    mix = {"input_mix_from_db": 8.0, "input_mix_full_db": 18.0, "noise_model": "tracked", "wiener_output": True}
    entry = method_entry("udiffse+")
    problem = PosteriorProblem(y, lambda repeats: exact_denoiser, FORMULATION, make_generators([0, 1]))
    heard = InputNoise.of(y, problem.compression)
    whole = entry.method_class(entry.settings(mix)).mix_share(problem, heard)
    method = entry.method_class(entry.settings({**mix, "input_mix_window_frames": 100}))
    share = method.mix_share(problem, heard)
    assert whole.shape == (2,) and share.shape == (2, y.shape[-1])
    chunks = plan_chunks(y.shape[-1], 100, ENHANCEMENT_OVERLAP_FRAMES)
    first, last = chunks[0], chunks[-1]
    padded = torch.nn.functional.pad(y, (0, last[1] - y.shape[-1]))  # as the enhancement pads its last chunk
    alone = [float(method.share_of(InputNoise.of(padded[..., s:e], problem.compression))[0]) for s, e in (first, last)]
    assert float(share[0, first[0]]) == pytest.approx(alone[0]) and alone[0] == 1.0  # the clean start: given back
    assert float(share[0, y.shape[-1] - 1]) == pytest.approx(alone[1]) and alone[1] < 0.5  # the noisy end: enhanced
    assert torch.equal(share[0], share[1])
    from avdiff.posterior.input_noise import windowed

    for frames in (300, 501, 751):  # windows that agree give exactly their value (at 501: not by the weights alone)
        agreeing = windowed(torch.zeros(2, 2, 8, frames), 256, lambda part: torch.ones(len(part)))
        assert torch.equal(agreeing, torch.ones(2, frames))
    with pytest.raises(ValueError, match="input_mix_window_frames"):
        entry.settings({**mix, "input_mix_window_frames": ENHANCEMENT_OVERLAP_FRAMES})


def test_the_input_mix_snr_is_not_fooled_by_low_frequency_noise() -> None:
    """Brown noise at 0 dB: the frame-level SNR reads a quiet input (over 8 dB, so some of the noisy
    input would be given back); the lower of it and the tracker's + 8 dB gives none back. At 20 dB
    both give the input back whole. The tracker is consulted only where it reads low."""
    from test_noise_tracking import mixture  # tests/ is on sys.path

    transform, compression = SpectrogramTransform(), Compression.default()
    for seed in (1, 2):
        low, high = (InputNoise.of(transform.encode(torch.from_numpy(mixture(snr, 2.0, seed)[0])[None]), compression)
                     for snr in (0.0, 20.0))
        assert float(low.mix_snr_db("frame", 8.0)[0]) > 10.0
        assert float(low.mix_snr_db("frame_or_tracker", 8.0)[0]) < 8.0
        assert torch.equal(low.mix_snr_db("frame_or_tracker", 8.0),
                           torch.minimum(low.frame_snr_db, low.snr_db + 8.0))
        assert float(input_share(high.mix_snr_db("frame_or_tracker", 8.0), 8.0, 18.0)[0]) == 1.0
        # a tracker reading above the trusted range is not consulted: the frame-level SNR alone
        assert torch.equal(low.mix_snr_db("frame_or_tracker", 8.0, float(low.snr_db[0]) - 0.1), low.frame_snr_db)
        assert torch.equal(low.mix_snr_db("frame_or_tracker", 8.0, float(low.snr_db[0]) + 0.1),
                           low.mix_snr_db("frame_or_tracker", 8.0))
    with pytest.raises(ValueError, match="unknown input mix SNR"):
        low.mix_snr_db("oracle", 8.0)


def test_bad_input_noise_settings_are_refused() -> None:
    from avdiff.errors import ConfigError

    entry = method_entry("udiffse+")
    with pytest.raises(ConfigError, match="input_mix_full_db must be above"):
        entry.settings({"input_mix_from_db": 20.0, "input_mix_full_db": 10.0})
    with pytest.raises(ConfigError, match="start_noise_multiple must be > 0"):
        entry.settings({"start_noise_multiple": 0.0})
    with pytest.raises(ConfigError):
        entry.settings({"noise_model": "oracle"})
    with pytest.raises(ConfigError):
        entry.settings({"input_mix_by": "oracle"})


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    scale = float(estimate @ reference) / float(reference @ reference)
    error = estimate - scale * reference
    return 10 * math.log10(float((scale * reference) @ (scale * reference)) / max(float(error @ error), 1e-20))


def test_the_shipped_default_gives_a_clean_recording_back(grid_audio, tmp_path) -> None:
    """A clean GRID recording through `avdiff enhance` with no --model: within 0.5 dB of itself
    (SI-SDR of the output against the input of at least 30 dB), the decision in the settings file."""
    clean = 0.5 * grid_audio[0][:24000]  # (the GRID clip touches full scale)
    sf.write(tmp_path / "clean.wav", clean, 16000, subtype="FLOAT")
    out = tmp_path / "out.wav"
    assert main(["enhance", "--noisy", str(tmp_path / "clean.wav"), "--output", str(out), "--steps", "2"]) == 0
    assert si_sdr(clean, sf.read(out, dtype="float32")[0]) > 30.0
    heard = yaml.safe_load(out.with_suffix(".settings.yaml").read_text())["inputs"]["clean"]
    assert heard["input_share"] == 1.0 and heard["frame_snr_db"] > 18.0


def test_the_shipped_default_enhances_low_frequency_noise_its_frame_snr_reads_as_quiet(tmp_path) -> None:
    """Brown noise at 0 dB through `avdiff enhance` with no --model: the frame-level SNR reads a
    quiet input, but the shipped mix SNR (the tracker reads low, so the lower of the two, the
    tracker's + 8 dB) gives almost nothing back, so the noise is taken off (issue 26, second round)."""
    from test_noise_tracking import mixture  # tests/ is on sys.path

    noisy, noise = mixture(0.0, 2.0, seed=1)
    scale = 0.5 / float(np.abs(noisy).max())
    sf.write(tmp_path / "brown.wav", noisy * scale, 16000, subtype="FLOAT")
    out = tmp_path / "out.wav"
    assert main(["enhance", "--noisy", str(tmp_path / "brown.wav"), "--output", str(out), "--steps", "2"]) == 0
    heard = yaml.safe_load(out.with_suffix(".settings.yaml").read_text())["inputs"]["brown"]
    assert heard["frame_snr_db"] > 10.0 and heard["input_share"] < 0.2
    speech = (noisy - noise) * scale
    assert si_sdr(speech, sf.read(out, dtype="float32")[0]) > si_sdr(speech, noisy * scale) + 7.0  # (first round: +5.4)


def test_the_adaptive_start_is_recorded_in_the_run_settings(random_pipeline, tmp_path, capsys) -> None:
    model = random_pipeline.save_pretrained(tmp_path / "model")
    rng = np.random.default_rng(3)
    (tmp_path / "in").mkdir()
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000) * (np.arange(16000) % 4000 < 2000)
    for name, level in (("quiet", 0.001), ("loud", 0.3)):
        sf.write(tmp_path / "in" / f"{name}.wav", (tone + level * rng.standard_normal(16000)).astype(np.float32), 16000)
    assert main(["enhance", "--model", str(model), "--noisy", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                 "--device", "cpu", "--steps", "2", "--noise-model", "tracked", "--start-noise-multiple", "3"]) == 0
    inputs = yaml.safe_load((tmp_path / "out" / "enhance_settings.yaml").read_text())["inputs"]
    assert inputs["quiet"]["start_sigma"] < inputs["loud"]["start_sigma"]
    assert inputs["quiet"]["snr_db"] > inputs["loud"]["snr_db"] + 10
    assert "input SNR about" in capsys.readouterr().out
