"""Noises of many kinds for enhancement benchmarks, made here from what the machine has.

The shared folder holds three real recordings; a prior's posterior settings tuned on them need
noises they were not tuned on. `make_noise(kind, length, rng)` returns one excerpt of:
- `real1`..`real3`: the recordings of ../shared/data/noise (sorted by name);
- `white`, `pink`, `brown`: stationary coloured noise (power 1, 1/f, 1/f^2);
- `hum`: mains hum, a 50 or 60 Hz fundamental with decaying harmonics up to 4 kHz, plus a little
  white noise;
- `modulated`: pink noise under a 2-8 Hz amplitude modulation (the rate of syllables);
- `fan`: brown noise with a blade-pass tone (80-250 Hz) and its harmonics, slowly wavering;
- `tap`: running water, band-passed 1-7 kHz white noise with a fast random gain;
- `crowd`: babble of four utterances of the speakers given by `voices` (never trained or tested on), equal power;
- `grid`: the background of the GRID clips of ../shared/data/grid (their first and last 0.2 s,
  before and after the talker speaks), tiled.
`TUNING_KINDS` are those posterior settings may be chosen on; `HELD_OUT_KINDS` never are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
TUNING_KINDS = ("real1", "real2", "real3", "white", "hum", "crowd")
HELD_OUT_KINDS = ("pink", "brown", "modulated", "fan", "tap", "grid")
KINDS = TUNING_KINDS + HELD_OUT_KINDS


def coloured(length: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Gaussian noise with power spectrum 1 / f**exponent (0 white, 1 pink, 2 brown), unit power."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    spectrum /= np.maximum(np.arange(len(spectrum)), 1) ** (exponent / 2)
    spectrum[0] = 0.0
    return unit_power(np.fft.irfft(spectrum, n=length))


def unit_power(signal: np.ndarray) -> np.ndarray:
    return (signal / max(float(np.sqrt(np.mean(signal**2))), 1e-12)).astype(np.float32)


def slow_curve(length: int, rng: np.random.Generator, points: int, low: float, high: float) -> np.ndarray:
    """A random curve through `points` values in [low, high], linear in between."""
    return np.interp(np.arange(length), np.linspace(0, length, points), rng.uniform(low, high, points))


def hum(length: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(length) / SAMPLE_RATE
    mains = rng.choice([50.0, 60.0]) * rng.uniform(0.995, 1.005)
    tone = sum(rng.uniform(0.5, 1.0) / k * np.sin(2 * np.pi * k * mains * t + rng.uniform(0, 2 * np.pi))
               for k in range(1, int(4000 // mains)))
    return unit_power(unit_power(tone) + 0.05 * rng.standard_normal(length))


def modulated(length: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(length) / SAMPLE_RATE
    depth, rate = rng.uniform(0.6, 0.95), rng.uniform(2.0, 8.0)
    return unit_power(coloured(length, rng, 1.0) * (1 + depth * np.sin(2 * np.pi * rate * t + rng.uniform(0, 6.3))))


def fan(length: int, rng: np.random.Generator) -> np.ndarray:
    blade = rng.uniform(80.0, 250.0) * slow_curve(length, rng, 4, 0.98, 1.02)
    phase = 2 * np.pi * np.cumsum(blade) / SAMPLE_RATE
    tone = sum(0.6 / k * np.sin(k * phase + rng.uniform(0, 6.3)) for k in range(1, 6))
    return unit_power(coloured(length, rng, 2.0) + 0.5 * unit_power(tone))


def tap(length: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length, 1 / SAMPLE_RATE)
    spectrum[(freqs < 1000) | (freqs > 7000)] *= 0.05
    water = np.fft.irfft(spectrum, n=length)
    gain = np.exp(slow_curve(length, rng, max(4, length // 400), -0.6, 0.6))
    return unit_power(water * gain)


def excerpt(recording: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random `length`-sample stretch of `recording`, tiled when it is shorter."""
    if len(recording) < length + 1:
        recording = np.tile(recording, length // max(len(recording), 1) + 2)
    start = int(rng.integers(0, len(recording) - length))
    return unit_power(recording[start : start + length])


def babble(voices: Sequence[np.ndarray], length: int, rng: np.random.Generator) -> np.ndarray:
    """Four of `voices` at equal power, each from a random offset."""
    chosen = rng.choice(len(voices), size=min(4, len(voices)), replace=False)
    return unit_power(sum(excerpt(voices[int(i)], length, rng) for i in chosen))


def real_recordings(folder: Path) -> list[np.ndarray]:
    from avdiff.media.audio import load_audio

    return [load_audio(path, SAMPLE_RATE) for path in sorted(folder.glob("*.wav"))]


def grid_background(folder: Path) -> np.ndarray:
    """The first and last 0.2 s of every GRID clip (the talker is silent there), joined."""
    from avdiff.media.audio import load_audio

    edge = int(0.2 * SAMPLE_RATE)
    pieces = []
    for path in sorted(folder.glob("*.mpg")):
        audio = load_audio(path, SAMPLE_RATE)
        pieces += [audio[:edge], audio[-edge:]]
    return np.concatenate(pieces)


class NoiseMaker:
    """Every kind of `KINDS` from the shared data folder and the given babble voices."""

    def __init__(self, shared_data: Path, voices: Sequence[np.ndarray]) -> None:
        self.recordings = real_recordings(shared_data / "noise")
        self.grid = grid_background(shared_data / "grid")
        self.voices = list(voices)

    def make(self, kind: str, length: int, rng: np.random.Generator) -> np.ndarray:
        if kind.startswith("real"):
            return excerpt(self.recordings[int(kind[4:]) - 1], length, rng)
        if kind in ("white", "pink", "brown"):
            return coloured(length, rng, {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind])
        if kind == "crowd":
            return babble(self.voices, length, rng)
        if kind == "grid":
            return excerpt(self.grid, length, rng)
        makers = {"hum": hum, "modulated": modulated, "fan": fan, "tap": tap}
        if kind not in makers:
            raise ValueError(f"unknown noise kind {kind!r}; known: {', '.join(KINDS)}")
        return makers[kind](length, rng)
