"""Does generated speech have pitch harmonics where the reference does? A periodicity measure.

Each 40 ms frame (10 ms hop) gets the peak of its normalised autocorrelation at lags of
2.5-12.5 ms (80-400 Hz pitch), r in [0, 1]: near 1 for a periodic (harmonic) frame, near 0 for
noise. Its harmonic-to-noise ratio is 10 log10(r / (1 - r)) (Boersma 1993's autocorrelation HNR,
without his window correction). Measured on the frames where the clean reference is voiced
(r >= 0.6 and within 30 dB of its loudest frame), so silence and unvoiced consonants, which
have no harmonics to make, do not count. Smeared, harmonic-less output scores near 0 dB; clean
speech 10-20 dB. `pitch_agreement` is the share of those frames whose generated pitch (the lag of
the peak) is within 10 % of the reference's: harmonics at the right pitch, not only some.
"""

from __future__ import annotations

import numpy as np

FRAME_S, HOP_S = 0.040, 0.010
LOWEST_PITCH_HZ, HIGHEST_PITCH_HZ = 80.0, 400.0
VOICED_PERIODICITY, VOICED_WITHIN_DB = 0.6, 30.0
PITCH_TOLERANCE = 0.10


def periodicity(audio: np.ndarray, rate: int = 16000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: the autocorrelation peak r in [0, 1], its lag (samples) and the frame's energy (dB)."""
    length, hop = int(FRAME_S * rate), int(HOP_S * rate)
    shortest, longest = int(rate / HIGHEST_PITCH_HZ), int(rate / LOWEST_PITCH_HZ)
    audio = np.asarray(audio, dtype=np.float64)
    starts = range(0, max(len(audio) - length, 0) + 1, hop)
    frames = np.stack([audio[s : s + length] for s in starts]) if len(audio) >= length else np.zeros((0, length))
    frames = (frames - frames.mean(1, keepdims=True)) * np.hanning(length)
    spectrum = np.fft.rfft(frames, n=2 * length)
    autocorr = np.fft.irfft(np.abs(spectrum) ** 2)[:, :length]
    window = np.fft.irfft(np.abs(np.fft.rfft(np.hanning(length), n=2 * length)) ** 2)[:length]
    normalised = (autocorr / np.maximum(autocorr[:, :1], 1e-12)) / (window / window[0])  # the window's own decay out
    lags = np.arange(shortest, longest + 1)
    best = np.argmax(normalised[:, lags], axis=1)
    peak = np.clip(normalised[np.arange(len(frames)), lags[best]], 0.0, 0.999)
    energy = 10 * np.log10(np.maximum((frames**2).mean(1), 1e-12))
    return peak, lags[best], energy


def harmonicity(reference: np.ndarray, estimate: np.ndarray, rate: int = 16000) -> dict[str, float]:
    """`hnr_db` of the estimate and of the reference on the reference's voiced frames, and
    `pitch_agreement` (see the module doc); NaN when the reference has no voiced frame."""
    ref_r, ref_lag, ref_energy = periodicity(reference, rate)
    est_r, est_lag, _ = periodicity(estimate, rate)
    count = min(len(ref_r), len(est_r))
    voiced = (ref_r[:count] >= VOICED_PERIODICITY) & (ref_energy[:count] >= ref_energy.max(initial=-120) - VOICED_WITHIN_DB)
    if not voiced.any():
        return {"hnr_db": float("nan"), "hnr_db_reference": float("nan"), "pitch_agreement": float("nan")}

    def hnr(r: np.ndarray) -> float:
        return float(np.mean(10 * np.log10(r / (1 - r) + 1e-12)))

    close = np.abs(est_lag[:count][voiced] - ref_lag[:count][voiced]) <= PITCH_TOLERANCE * ref_lag[:count][voiced]
    return {"hnr_db": hnr(np.maximum(est_r[:count][voiced], 1e-6)), "hnr_db_reference": hnr(ref_r[:count][voiced]),
            "pitch_agreement": float(close.mean())}
