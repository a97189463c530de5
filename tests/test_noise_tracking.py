"""The noise tracker and the SNR estimate, on mixtures of known SNR."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avdiff.audio.spectrogram import SpectrogramTransform
from avdiff.posterior.noise_tracking import estimate_snr_db, quiet_start, track_noise_power


def speech_like(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Voiced syllables: harmonics of a wandering pitch under a 4 Hz on/off envelope, with pauses."""
    t = np.arange(int(seconds * 16000)) / 16000
    pitch = 120 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / 16000
    voice = sum(np.sin(k * phase) / k for k in range(1, 25))
    envelope = np.clip(np.sin(2 * np.pi * 2.0 * t + rng.uniform(0, 6)), 0, None) ** 2
    envelope[(t > 0.8 * seconds)] = 0.0  # a pause at the end, as utterances have
    return (voice * envelope).astype(np.float32)


def mixture(snr_db: float, colour: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Speech-like sound + coloured noise (power 1 / f**colour) at `snr_db`, and the noise alone (4 s)."""
    rng = np.random.default_rng(seed)
    speech = speech_like(4.0, rng)
    spectrum = np.fft.rfft(rng.standard_normal(len(speech)))
    spectrum /= np.maximum(np.arange(len(spectrum)), 1) ** (colour / 2)
    noise = np.fft.irfft(spectrum, n=len(speech))
    noise *= np.sqrt(np.mean(speech**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (speech + noise).astype(np.float32), noise.astype(np.float32)


def mixture_power(snr_db: float, colour: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear STFT power of speech + coloured noise at `snr_db`, and the noise's own power."""
    noisy, noise = mixture(snr_db, colour, seed)
    transform = SpectrogramTransform()

    def stft_power(x: np.ndarray) -> torch.Tensor:
        return transform.stft(torch.from_numpy(x.astype(np.float32))[None]).abs().square()

    return stft_power(noisy), stft_power(noise)


@pytest.mark.parametrize("snr_db", [0.0, 5.0, 10.0])
@pytest.mark.parametrize("colour", [0.0, 1.0])
def test_snr_estimate_is_within_a_few_db_on_stationary_noise(snr_db: float, colour: float) -> None:
    noisy, _ = mixture_power(snr_db, colour, seed=int(snr_db) + 7)
    estimate = float(estimate_snr_db(noisy, track_noise_power(noisy))[0])
    assert abs(estimate - snr_db) < 3.0, estimate


def test_snr_estimate_orders_inputs_by_their_snr() -> None:
    estimates = [float(estimate_snr_db(p, track_noise_power(p))[0])
                 for p in (mixture_power(snr, 1.0, seed=3)[0] for snr in (-5.0, 5.0, 15.0, 25.0))]
    assert estimates == sorted(estimates) and estimates[-1] - estimates[0] > 15


def test_tracked_noise_follows_the_noise_not_the_speech() -> None:
    noisy, noise = mixture_power(0.0, 1.0, seed=5)
    tracked = track_noise_power(noisy)
    per_bin_error = (tracked.mean(-1).log10() - noise.mean(-1).log10()).abs() * 10
    assert float(per_bin_error.median()) < 3.0  # dB, bin by bin
    assert float(tracked.sum()) < 0.7 * float(noisy.sum())  # the speech is not taken for noise


def test_tracker_follows_a_noise_that_changes_level() -> None:
    rng = np.random.default_rng(0)
    frames = 400
    level = torch.ones(1, 8, frames)
    level[..., frames // 2 :] = 100.0  # +20 dB half-way through
    power = level * torch.from_numpy(rng.exponential(size=(1, 8, frames)).astype(np.float32))
    tracked = track_noise_power(power)
    assert float(tracked[..., 20:150].mean()) == pytest.approx(1.0, rel=0.5)
    assert float(tracked[..., 260:380].mean()) == pytest.approx(100.0, rel=0.5)


def test_quiet_start_is_unbiased_for_noise_alone() -> None:
    power = torch.from_numpy(np.random.default_rng(1).exponential(4.0, size=(1, 3, 5000)).astype(np.float32))
    assert quiet_start(power, 0.1).numpy() == pytest.approx(4.0, rel=0.1)
