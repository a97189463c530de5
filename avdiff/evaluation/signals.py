"""Checks and alignment of (reference, estimate) signal pairs before any metric sees them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avdiff.errors import AVDiffError, InputError
from avdiff.media import SAMPLE_RATE, resample

# Lengths may differ by this much (codec padding, STFT round trips); beyond it the pair is refused.
DEFAULT_LENGTH_TOLERANCE_MS = 20.0
# RMS below this (about -140 dBFS) counts as digital silence.
SILENCE_RMS = 1e-7


class MetricError(InputError):
    """A metric is undefined for this pair (silent reference, too little speech, NaN samples)."""


class LengthMismatchError(InputError):
    """Reference and estimate differ in length by more than the tolerance."""


class MissingDependencyError(AVDiffError, ImportError):
    """An optional package (the `eval` extra) is needed but not installed."""


def require_module(name: str, package: str | None = None):
    """Import `name`, or raise MissingDependencyError naming the pip package and the extra."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise MissingDependencyError(
            f"{package or name} is not installed ({error}); install it with: pip install 'avdiff[eval]'"
        ) from error


def as_signal(samples: np.ndarray, role: str) -> np.ndarray:
    """A finite, non-empty 1-D float64 copy of `samples`; `role` names it in errors."""
    array = np.asarray(samples, dtype=np.float64)
    if array.ndim == 2 and 1 in array.shape:
        array = array.reshape(-1)
    if array.ndim != 1:
        raise MetricError(f"{role}: expected a mono 1-D signal, got shape {array.shape}")
    if array.size == 0:
        raise MetricError(f"{role}: the signal is empty")
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise MetricError(f"{role}: {bad} of {array.size} samples are NaN or infinite")
    return array


def is_silent(signal: np.ndarray) -> bool:
    """True when the signal's RMS is below SILENCE_RMS (about -140 dBFS)."""
    return float(np.sqrt(np.mean(np.square(signal)))) < SILENCE_RMS


def require_equal_length(reference: np.ndarray, estimate: np.ndarray) -> None:
    """Metric functions take already-aligned signals; say so when they are not."""
    if reference.shape != estimate.shape:
        raise LengthMismatchError(
            f"reference has {reference.size} samples, estimate {estimate.size}: align them first "
            "(avdiff.evaluation.align_lengths)")


def align_lengths(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = SAMPLE_RATE,
                  tolerance_ms: float = DEFAULT_LENGTH_TOLERANCE_MS) -> tuple[np.ndarray, np.ndarray, float]:
    """Trim the longer signal's end to the shorter one's length when they differ by <= `tolerance_ms`.

    Both signals are assumed to start at the same instant. Returns (reference, estimate, trimmed_ms);
    raises LengthMismatchError, saying which one is longer and by how much, beyond the tolerance.
    """
    difference = estimate.size - reference.size
    difference_ms = 1000.0 * abs(difference) / sample_rate
    if difference_ms > tolerance_ms:
        longer = "estimate" if difference > 0 else "reference"
        raise LengthMismatchError(
            f"length mismatch: the {longer} is {difference_ms:.1f} ms longer (reference {reference.size}, "
            f"estimate {estimate.size} samples at {sample_rate} Hz); tolerance is {tolerance_ms:g} ms")
    length = min(reference.size, estimate.size)
    return reference[:length], estimate[:length], difference_ms


@dataclass(frozen=True)
class SignalPair:
    """A checked reference/estimate pair at `sample_rate`, equal in length."""

    reference: np.ndarray
    estimate: np.ndarray
    sample_rate: int
    trimmed_ms: float


def prepare_pair(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = SAMPLE_RATE,
                 tolerance_ms: float = DEFAULT_LENGTH_TOLERANCE_MS) -> SignalPair:
    """Check both signals, resample them to 16 kHz and align their lengths."""
    ref = as_signal(reference, "reference")
    est = as_signal(estimate, "estimate")
    if sample_rate != SAMPLE_RATE:
        ref = resample(ref, sample_rate, SAMPLE_RATE).astype(np.float64)
        est = resample(est, sample_rate, SAMPLE_RATE).astype(np.float64)
    ref, est, trimmed = align_lengths(ref, est, SAMPLE_RATE, tolerance_ms)
    return SignalPair(ref, est, SAMPLE_RATE, trimmed)
