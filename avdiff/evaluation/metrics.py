"""Objective speech metrics on aligned 16 kHz mono signals: SI-SDR, PESQ, STOI/ESTOI, LSD.

Every function takes (reference, estimate) of equal length at `sample_rate` (16 kHz unless
given) and returns a float; it raises MetricError when the metric is undefined for the pair.
`compute_metrics` checks, resamples and aligns a pair first and collects per-metric errors.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.signal import stft as scipy_stft

from avdiff.evaluation.signals import (
    DEFAULT_LENGTH_TOLERANCE_MS, MetricError, as_signal, is_silent, prepare_pair, require_equal_length,
    require_module,
)
from avdiff.grid_grammar import SLOT_NAMES
from avdiff.media import SAMPLE_RATE, resample

PESQ_NB_RATE = 8000  # narrow-band PESQ is computed on the signals resampled to 8 kHz
LSD_DYNAMIC_RANGE_DB = 80.0  # LSD power floor: this far below the reference's strongest STFT bin
LSD_WINDOW_S = 0.032  # 512 samples at 16 kHz
LSD_HOP_S = 0.008  # 128 samples at 16 kHz


def _checked(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref, est = as_signal(reference, "reference"), as_signal(estimate, "estimate")
    require_equal_length(ref, est)
    return ref, est


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR in dB (Le Roux et al., 2019, "SDR - half-baked or well done?").

    Both signals are made zero-mean; the target is the projection of the estimate on the
    reference, alpha * s with alpha = <s_hat, s> / ||s||^2, and SI-SDR = 10 log10(||alpha s||^2 /
    ||s_hat - alpha s||^2), computed in float64. Returns +inf for an exact scaled copy and -inf for
    an estimate orthogonal to the reference; raises MetricError for a silent reference or estimate.
    """
    ref, est = _checked(reference, estimate)
    ref = ref - ref.mean()
    est = est - est.mean()
    if is_silent(ref):
        raise MetricError("SI-SDR is undefined: the reference is silent")
    if is_silent(est):
        raise MetricError("SI-SDR is undefined: the estimate is silent")
    alpha = float(np.dot(est, ref) / np.dot(ref, ref))
    target = alpha * ref
    residual = est - target
    target_energy = float(np.dot(target, target))
    residual_energy = float(np.dot(residual, residual))
    if residual_energy == 0.0:
        return math.inf
    if target_energy == 0.0:
        return -math.inf
    return 10.0 * math.log10(target_energy / residual_energy)


def _pesq(reference: np.ndarray, estimate: np.ndarray, sample_rate: int, mode: str) -> float:
    pesq_module = require_module("pesq")
    ref, est = _checked(reference, estimate)
    if is_silent(ref):
        raise MetricError(f"PESQ ({mode}) is undefined: the reference is silent")
    if is_silent(est):
        raise MetricError(f"PESQ ({mode}) is undefined: the estimate is silent")
    try:
        return float(pesq_module.pesq(sample_rate, ref, est, mode))
    except pesq_module.PesqError as error:  # NoUtterancesError, BufferTooShortError, ...
        reason = error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else str(error)
        raise MetricError(f"PESQ ({mode}) failed: {reason} ({type(error).__name__})") from error
    except ValueError as error:  # the C code returns NaN for degenerate inputs
        raise MetricError(f"PESQ ({mode}) failed: {error}") from error


def pesq_wb(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Wide-band PESQ (ITU-T P.862.2, MOS-LQO, about 1.04..4.64) at 16 kHz."""
    if sample_rate != 16000:
        raise MetricError(f"wide-band PESQ needs 16 kHz signals, got {sample_rate} Hz")
    return _pesq(reference, estimate, 16000, "wb")


def pesq_nb(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Narrow-band PESQ (ITU-T P.862 + P.862.1 mapping, about 1.02..4.55) on the signals resampled to 8 kHz."""
    ref, est = _checked(reference, estimate)
    ref = resample(ref, sample_rate, PESQ_NB_RATE)
    est = resample(est, sample_rate, PESQ_NB_RATE)
    return _pesq(ref, est, PESQ_NB_RATE, "nb")


def _stoi(reference: np.ndarray, estimate: np.ndarray, sample_rate: int, extended: bool) -> float:
    pystoi = require_module("pystoi")
    name = "ESTOI" if extended else "STOI"
    ref, est = _checked(reference, estimate)
    if is_silent(ref):
        raise MetricError(f"{name} is undefined: the reference is silent")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(pystoi.stoi(ref, est, sample_rate, extended=extended))
    for warning in caught:
        if "Not enough STFT frames" in str(warning.message):
            raise MetricError(f"{name} is undefined: under 30 frames (~0.4 s) of reference speech remain "
                              "after pystoi removes silent frames")
    if not math.isfinite(value):
        raise MetricError(f"{name} returned {value}")
    return value


def stoi(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Short-time objective intelligibility (Taal et al., 2011) via pystoi, in [0, 1]."""
    return _stoi(reference, estimate, sample_rate, extended=False)


def estoi(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Extended STOI (Jensen and Taal, 2016) via pystoi; robust to modulated noise, about [0, 1]."""
    return _stoi(reference, estimate, sample_rate, extended=True)


def _power_spectrogram(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    window = int(round(LSD_WINDOW_S * sample_rate))
    hop = int(round(LSD_HOP_S * sample_rate))
    if signal.size < window:
        raise MetricError(f"LSD needs at least {window} samples ({1000 * LSD_WINDOW_S:g} ms), got {signal.size}")
    _, _, spec = scipy_stft(signal, fs=sample_rate, window="hann", nperseg=window, noverlap=window - hop,
                            detrend=False, boundary=None, padded=False)
    return np.abs(spec) ** 2  # (bins, frames)


def log_spectral_distance(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Log-spectral distance in dB (lower is better; 0 for identical signals).

    LSD = (1/T) sum_t sqrt( (1/F) sum_f (10 log10 max(P_ref[f,t], e) - 10 log10 max(P_est[f,t], e))^2 )
    where P = |STFT|^2 with a 32 ms Hann window and 8 ms hop (512/128 samples at 16 kHz), the F
    one-sided bins from 0 Hz to Nyquist, the T frames that fit inside the signal (no padding), and
    the floor e = max(P_ref) * 10^(-80/10): 80 dB below the reference's strongest bin, so digital
    silence counts as -80 dB rather than -inf. A gain applied to both signals leaves LSD unchanged;
    a gain applied to the estimate alone counts (unlike SI-SDR). Raises MetricError for a silent reference.
    """
    ref, est = _checked(reference, estimate)
    if is_silent(ref):
        raise MetricError("LSD is undefined: the reference is silent")
    ref_power = _power_spectrogram(ref, sample_rate)
    est_power = _power_spectrogram(est, sample_rate)
    floor = float(ref_power.max()) * 10.0 ** (-LSD_DYNAMIC_RANGE_DB / 10.0)
    ref_db = 10.0 * np.log10(np.maximum(ref_power, floor))
    est_db = 10.0 * np.log10(np.maximum(est_power, floor))
    per_frame = np.sqrt(np.mean((ref_db - est_db) ** 2, axis=0))
    return float(per_frame.mean())


@dataclass(frozen=True)
class Metric:
    """A metric's key, how tables label it, and which direction is better."""

    key: str
    label: str
    higher_is_better: bool
    function: Callable[[np.ndarray, np.ndarray, int], float] | None = None

    @property
    def heading(self) -> str:
        return f"{self.label} {'↑' if self.higher_is_better else '↓'}"


METRICS: dict[str, Metric] = {
    "si_sdr": Metric("si_sdr", "SI-SDR (dB)", True, lambda r, e, sr: si_sdr(r, e)),
    "si_sdr_i": Metric("si_sdr_i", "SI-SDRi (dB)", True),
    "pesq_wb": Metric("pesq_wb", "PESQ-WB", True, pesq_wb),
    "pesq_nb": Metric("pesq_nb", "PESQ-NB", True, pesq_nb),
    "stoi": Metric("stoi", "STOI", True, stoi),
    "estoi": Metric("estoi", "ESTOI", True, estoi),
    "lsd": Metric("lsd", "LSD (dB)", False, log_spectral_distance),
    "wer": Metric("wer", "WER", False),
    # per-slot word accuracy of GRID sentences (avdiff.evaluation.recognisers.slot_hits)
    **{f"slot_{name}": Metric(f"slot_{name}", f"{name} acc.", True) for name in SLOT_NAMES},
}
# The metrics computed on every pair (si_sdr_i and wer are derived elsewhere).
SIGNAL_METRICS: tuple[str, ...] = ("si_sdr", "pesq_wb", "pesq_nb", "stoi", "estoi", "lsd")


@dataclass
class PairScores:
    """Metric values of one pair (NaN where undefined), the reason per failed metric, the trim."""

    values: dict[str, float]
    errors: dict[str, str]
    trimmed_ms: float


def compute_metrics(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = SAMPLE_RATE,
                    metrics: Sequence[str] = SIGNAL_METRICS,
                    tolerance_ms: float = DEFAULT_LENGTH_TOLERANCE_MS) -> PairScores:
    """All `metrics` of one pair at 16 kHz (resampled from `sample_rate`, lengths aligned).

    Raises MetricError/LengthMismatchError when the pair as a whole is unusable (NaN samples,
    empty, lengths beyond the tolerance); a metric undefined for the pair is NaN with its reason.
    """
    unknown = [key for key in metrics if key not in METRICS or METRICS[key].function is None]
    if unknown:
        raise ValueError(f"unknown signal metrics {unknown}; choose from {list(SIGNAL_METRICS)}")
    pair = prepare_pair(reference, estimate, sample_rate, tolerance_ms)
    values: dict[str, float] = {}
    errors: dict[str, str] = {}
    for key in metrics:
        try:
            values[key] = METRICS[key].function(pair.reference, pair.estimate, pair.sample_rate)
        except MetricError as error:
            values[key] = math.nan
            errors[key] = str(error)
    return PairScores(values, errors, pair.trimmed_ms)
