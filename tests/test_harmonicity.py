"""The harmonicity measure tells harmonic speech-like signals from smeared noise, and right pitch from wrong."""

from __future__ import annotations

import math

import numpy as np

from avdiff.evaluation.harmonicity import harmonicity

RATE = 16000


def harmonic(pitch_hz: float, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """Ten harmonics with falling amplitudes and a slow vibrato, a little noise: a voiced vowel."""
    t = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * np.cumsum(pitch_hz * (1 + 0.02 * np.sin(2 * np.pi * 3 * t))) / RATE
    tone = sum(np.sin(k * phase) / k for k in range(1, 11))
    return (0.3 * tone + 0.003 * np.random.default_rng(seed).standard_normal(len(t))).astype(np.float32)


def test_harmonics_at_the_right_pitch_score_high_and_noise_or_wrong_pitch_do_not():
    reference = harmonic(150)
    same = harmonicity(reference, harmonic(150, seed=1))
    assert same["hnr_db"] > 10 and same["hnr_db_reference"] > 10 and same["pitch_agreement"] > 0.9
    noise = harmonicity(reference, 0.1 * np.random.default_rng(2).standard_normal(RATE).astype(np.float32))
    assert noise["hnr_db"] < 0 and noise["pitch_agreement"] < 0.2
    wrong = harmonicity(reference, harmonic(230, seed=3))
    assert wrong["hnr_db"] > 10 and wrong["pitch_agreement"] < 0.2


def test_a_reference_without_voiced_frames_gives_nan():
    scores = harmonicity(np.zeros(RATE, np.float32), harmonic(150))
    assert all(math.isnan(value) for value in scores.values())
