"""Noisy test mixtures: clean speech plus real (or, without it, generated) noise at a given SNR."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avdiff.media.audio import load_audio
from avdiff.timegrid import SAMPLE_RATE


def find_noise_dir() -> Path | None:
    """The real noise recordings of ../shared/data/noise, looked for beside the repo and the cwd."""
    candidates = [Path(__file__).resolve().parents[3] / "shared" / "data" / "noise",
                  Path.cwd().parent / "shared" / "data" / "noise", Path.cwd() / "shared" / "data" / "noise"]
    for folder in candidates:
        if folder.is_dir() and any(folder.glob("*.wav")):
            return folder
    return None


def generated_noise(length: int, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Non-stationary coloured noise (pink noise with a slow random envelope), for lack of real noise."""
    white = rng.standard_normal(length + 1)
    spectrum = np.fft.rfft(white)
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))  # 1/f power
    pink = np.fft.irfft(spectrum, n=length + 1)[:length]
    envelope = np.interp(np.arange(length), np.linspace(0, length, 8), rng.uniform(0.4, 1.0, 8))
    return (pink * envelope).astype(np.float32)


class NoiseBank:
    """Random excerpts of real noise files (or generated noise when there are none)."""

    def __init__(self, folder: Path | None, sample_rate: int = SAMPLE_RATE) -> None:
        self.recordings = [load_audio(path, sample_rate) for path in sorted(folder.glob("*.wav"))] if folder else []
        self.source = str(folder) if self.recordings else "generated pink noise"

    def excerpt(self, length: int, rng: np.random.Generator) -> np.ndarray:
        if not self.recordings:
            return generated_noise(length, rng)
        noise = self.recordings[int(rng.integers(len(self.recordings)))]
        if len(noise) < length:
            noise = np.tile(noise, length // len(noise) + 1)
        start = int(rng.integers(0, len(noise) - length + 1))
        return noise[start : start + length]


def mix_at_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> tuple[np.ndarray, np.ndarray]:
    """(clean + g noise, clean), g such that 10 log10(P_clean / P_noise) = snr_db.

    Both are scaled down together when the mixture would clip, so the pair stays consistent.
    """
    clean_power = float(np.mean(clean**2))
    noise_power = float(np.mean(noise**2)) or 1e-12
    mixture = clean + noise * np.sqrt(clean_power / (noise_power * 10 ** (snr_db / 10)))
    peak = float(np.abs(mixture).max())
    scale = 0.9 / peak if peak > 0.99 else 1.0
    return (mixture * scale).astype(np.float32), (clean * scale).astype(np.float32)
