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
  before and after the talker speaks), tiled;
- `car`: a car's cabin: low-passed brown noise (road and wind below about 600 Hz) under the engine's
  firing frequency (25-60 Hz, drifting with the revs) and its harmonics;
- `typing`: keystrokes (4-10 a second, 5-20 ms decaying 1-6 kHz bursts of random loudness) over a
  quiet room's pink noise;
- `siren`: a wailing tone (fundamental swept between about 600 and 1500 Hz at 0.2-1 Hz, three
  harmonics) over a little white noise;
- `cafe`: eight of the babble voices at random levels within 6 dB, plus clattering cups (sparse
  2-5 kHz bursts);
- `rain`: dense drops (30-80 a second, 1-4 ms bursts of 2-8 kHz) over low-passed hiss;
- `traffic`: a road's rumble (brown noise below 1 kHz) swelling as vehicles pass (one every 1-3 s);
- `vacuum`: a vacuum cleaner: band-passed 200-6000 Hz noise with the motor's whine (250-450 Hz and
  harmonics);
- `wind`: low-passed noise (below 300-600 Hz) in gusts (a random 0.3-2 Hz gain of 15 dB range).
`TUNING_KINDS` are those posterior settings may be chosen on; `HELD_OUT_KINDS` never are. Each
round of issue 26 reports on a set nothing was chosen on before, and the next round may choose
on it: `HELD_OUT_KINDS` (round 1), `UNSEEN_KINDS` (round 2), `UNSEEN_2_KINDS` (round 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
TUNING_KINDS = ("real1", "real2", "real3", "white", "hum", "crowd")
HELD_OUT_KINDS = ("pink", "brown", "modulated", "fan", "tap", "grid")
UNSEEN_KINDS = ("car", "typing", "siren", "cafe")
UNSEEN_2_KINDS = ("rain", "traffic", "vacuum", "wind")
SETS = {"tuning": TUNING_KINDS, "held-out": HELD_OUT_KINDS, "unseen": UNSEEN_KINDS, "unseen-2": UNSEEN_2_KINDS}
KINDS = tuple(kind for kinds in SETS.values() for kind in kinds)


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


def band_passed(signal: np.ndarray, low_hz: float, high_hz: float, leak: float = 0.0) -> np.ndarray:
    """`signal` with what lies outside [low_hz, high_hz] scaled by `leak` (an FFT brick wall)."""
    spectrum = np.fft.rfft(signal)
    freqs = np.fft.rfftfreq(len(signal), 1 / SAMPLE_RATE)
    spectrum[(freqs < low_hz) | (freqs > high_hz)] *= leak
    return np.fft.irfft(spectrum, n=len(signal))


def tap(length: int, rng: np.random.Generator) -> np.ndarray:
    water = band_passed(rng.standard_normal(length), 1000.0, 7000.0, leak=0.05)
    gain = np.exp(slow_curve(length, rng, max(4, length // 400), -0.6, 0.6))
    return unit_power(water * gain)




def car(length: int, rng: np.random.Generator) -> np.ndarray:
    road = band_passed(coloured(length, rng, 2.0), 0.0, rng.uniform(400.0, 800.0))
    firing = rng.uniform(25.0, 60.0) * slow_curve(length, rng, 3, 0.9, 1.1)
    phase = 2 * np.pi * np.cumsum(firing) / SAMPLE_RATE
    engine = sum(rng.uniform(0.3, 1.0) / k * np.sin(k * phase + rng.uniform(0, 6.3)) for k in range(1, 9))
    return unit_power(unit_power(road) + 0.7 * unit_power(engine))


def bursts(length: int, rng: np.random.Generator, rate: float, band: tuple[float, float],
           seconds: tuple[float, float]) -> np.ndarray:
    """Poisson-timed (`rate` a second) band-passed noise bursts with exponential decay and random loudness."""
    out = np.zeros(length)
    for _ in range(rng.poisson(rate * length / SAMPLE_RATE)):
        size = int(rng.uniform(*seconds) * SAMPLE_RATE)
        burst = rng.standard_normal(size) * np.exp(-np.arange(size) / (size / 4)) * 10 ** rng.uniform(-0.5, 0.5)
        start = int(rng.integers(0, max(1, length - size)))
        out[start : start + size] += band_passed(burst, *band)[: length - start]
    return out


def typing(length: int, rng: np.random.Generator) -> np.ndarray:
    keys = bursts(length, rng, rng.uniform(4.0, 10.0), (1000.0, 6000.0), (0.005, 0.02))
    return unit_power(unit_power(keys) + 0.05 * coloured(length, rng, 1.0))


def siren(length: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(length) / SAMPLE_RATE
    low, high = rng.uniform(550.0, 700.0), rng.uniform(1200.0, 1500.0)
    sweep = low + (high - low) * 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * t + rng.uniform(0, 6.3)))
    phase = 2 * np.pi * np.cumsum(sweep) / SAMPLE_RATE
    tone = sum(0.7**k * np.sin((k + 1) * phase) for k in range(3))
    return unit_power(unit_power(tone) + 0.1 * rng.standard_normal(length))


def cafe(voices: Sequence[np.ndarray], length: int, rng: np.random.Generator) -> np.ndarray:
    chosen = rng.choice(len(voices), size=min(8, len(voices)), replace=False)
    talk = sum(excerpt(voices[int(i)], length, rng) * 10 ** rng.uniform(-0.15, 0.15) for i in chosen)
    cups = bursts(length, rng, 1.5, (2000.0, 5000.0), (0.02, 0.08))
    return unit_power(unit_power(talk) + 0.3 * unit_power(cups))


def rain(length: int, rng: np.random.Generator) -> np.ndarray:
    drops = bursts(length, rng, rng.uniform(30.0, 80.0), (2000.0, 8000.0), (0.001, 0.004))
    return unit_power(unit_power(drops) + 0.3 * unit_power(band_passed(coloured(length, rng, 1.0), 0.0, 3000.0)))


def traffic(length: int, rng: np.random.Generator) -> np.ndarray:
    rumble = unit_power(band_passed(coloured(length, rng, 2.0), 0.0, 1000.0))
    t = np.arange(length) / SAMPLE_RATE
    swell = np.full(length, 0.2)
    for centre in np.cumsum(rng.uniform(1.0, 3.0, size=int(length / SAMPLE_RATE) + 2)) - 1.0:
        swell += rng.uniform(0.5, 1.5) * np.exp(-(((t - centre) / rng.uniform(0.3, 0.8)) ** 2))
    return unit_power(rumble * swell)


def vacuum(length: int, rng: np.random.Generator) -> np.ndarray:
    hiss = band_passed(coloured(length, rng, 0.5), 200.0, 6000.0, leak=0.1)
    motor = rng.uniform(250.0, 450.0) * slow_curve(length, rng, 3, 0.99, 1.01)
    phase = 2 * np.pi * np.cumsum(motor) / SAMPLE_RATE
    whine = sum(0.6**k * np.sin((k + 1) * phase + rng.uniform(0, 6.3)) for k in range(4))
    return unit_power(unit_power(hiss) + 0.5 * unit_power(whine))


def wind(length: int, rng: np.random.Generator) -> np.ndarray:
    base = band_passed(coloured(length, rng, 1.0), 0.0, rng.uniform(300.0, 600.0))
    gusts = 10 ** (slow_curve(length, rng, max(3, int(rng.uniform(0.3, 2.0) * length / SAMPLE_RATE)), -0.75, 0.0))
    return unit_power(base * gusts)


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
        if kind == "cafe":
            return cafe(self.voices, length, rng)
        makers = {"hum": hum, "modulated": modulated, "fan": fan, "tap": tap, "car": car, "typing": typing,
                  "siren": siren, "rain": rain, "traffic": traffic, "vacuum": vacuum, "wind": wind}
        if kind not in makers:
            raise ValueError(f"unknown noise kind {kind!r}; known: {', '.join(KINDS)}")
        return makers[kind](length, rng)
