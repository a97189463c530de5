"""Metrics against known values, on synthetic signals and on real GRID speech with real noise."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pesq", reason="pesq is not installed (pip install 'avdiff[eval]')")
pytest.importorskip("pystoi", reason="pystoi is not installed (pip install 'avdiff[eval]')")

from pesq import pesq as reference_pesq  # noqa: E402

from avdiff.evaluation import (  # noqa: E402
    LengthMismatchError, MetricError, compute_metrics, estoi, log_spectral_distance, pesq_nb, pesq_wb, si_sdr,
    stoi,
)
from avdiff.media import load_audio, resample  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SNRS_DB = (20.0, 10.0, 5.0, 0.0)


@pytest.fixture(scope="module")
def speech() -> list[np.ndarray]:
    """Two real GRID utterances (3 s, 16 kHz mono)."""
    clips = sorted((SHARED_DATA / "grid").glob("*.mpg"))[:2]
    if not clips:
        pytest.skip(f"real GRID clips not found in {SHARED_DATA / 'grid'} (../shared/data beside the repo)")
    return [load_audio(path).astype(np.float64) for path in clips]


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    """A real noise recording (16 kHz mono)."""
    path = SHARED_DATA / "noise" / "noise1.wav"
    if not path.is_file():
        pytest.skip(f"real noise not found at {path} (../shared/data/noise beside the repo)")
    return load_audio(path).astype(np.float64)


def mix(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """clean + noise scaled so that 10 log10(|clean|^2 / |noise|^2) = snr_db."""
    noise = np.resize(noise, clean.shape)
    return clean + noise * np.sqrt(np.sum(clean**2) / np.sum(noise**2) / 10 ** (snr_db / 10))


# --- SI-SDR -----------------------------------------------------------------------------------

def test_si_sdr_hand_computed_value() -> None:
    # zero-mean est = [1.75, -1.25, 0.75, -1.25]; alpha = 5/4; target energy 6.25; residual energy 0.5
    value = si_sdr(np.array([1.0, -1.0, 1.0, -1.0]), np.array([2.0, -1.0, 1.0, -1.0]))
    assert value == pytest.approx(10 * math.log10(12.5), abs=1e-9)


def test_si_sdr_of_scaled_copy_is_infinite_or_very_high() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(16000)
    assert si_sdr(x, x) == math.inf
    assert si_sdr(x, -3.7 * x) > 120.0  # float64 rounding only
    assert si_sdr(x.astype(np.float32), (0.25 * x).astype(np.float32)) > 120.0


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 30.0])
def test_si_sdr_equals_snr_of_orthogonal_noise(snr_db: float) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal(16000)
    x -= x.mean()
    n = rng.standard_normal(16000)
    n -= n.mean()
    n -= (n @ x) / (x @ x) * x  # exactly orthogonal to x: SI-SDR is exactly the SNR
    y = x + n * np.sqrt((x @ x) / (n @ n) / 10 ** (snr_db / 10))
    assert si_sdr(x, y) == pytest.approx(snr_db, abs=1e-6)


@pytest.mark.parametrize("snr_db", SNRS_DB)
def test_si_sdr_of_speech_plus_white_noise_is_the_snr(speech: list[np.ndarray], snr_db: float) -> None:
    noise = np.random.default_rng(2).standard_normal(speech[0].size)
    assert si_sdr(speech[0], mix(speech[0], noise, snr_db)) == pytest.approx(snr_db, abs=0.1)


def test_si_sdr_is_scale_sign_and_offset_invariant() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(8000)
    y = x + 0.5 * rng.standard_normal(8000)
    base = si_sdr(x, y)
    for gain in (-2.0, 0.01, 40.0):
        assert si_sdr(x, gain * y) == pytest.approx(base, abs=1e-9)
        assert si_sdr(gain * x, y) == pytest.approx(base, abs=1e-9)
    assert si_sdr(x + 0.3, y - 0.2) == pytest.approx(base, abs=1e-9)  # zero-mean
    # not symmetric in general, and not a plain SNR: a gain error on the estimate is not penalized
    assert si_sdr(x, 0.5 * x + 0.5 * (y - x)) == pytest.approx(si_sdr(x, y), abs=1e-9)


def test_si_sdr_errors() -> None:
    x = np.random.default_rng(4).standard_normal(1000)
    with pytest.raises(MetricError, match="reference is silent"):
        si_sdr(np.zeros(1000), x)
    with pytest.raises(MetricError, match="reference is silent"):
        si_sdr(np.full(1000, 0.5), x)  # DC only: silent once zero-mean
    with pytest.raises(MetricError, match="estimate is silent"):
        si_sdr(x, np.zeros(1000))
    bad = x.copy()
    bad[10] = np.nan
    with pytest.raises(MetricError, match="1 of 1000 samples are NaN"):
        si_sdr(x, bad)
    with pytest.raises(MetricError, match="mono 1-D"):
        si_sdr(np.stack([x, x]), np.stack([x, x]))
    with pytest.raises(MetricError, match="empty"):
        si_sdr(np.array([]), np.array([]))
    with pytest.raises(LengthMismatchError, match="align them first"):
        si_sdr(x, x[:-1])


# --- PESQ, STOI, ESTOI on real speech ------------------------------------------------------------

def test_pesq_of_identical_speech_is_maximal(speech: list[np.ndarray]) -> None:
    for clean in speech:
        assert pesq_wb(clean, clean) == pytest.approx(4.644, abs=0.01)
        assert pesq_nb(clean, clean) >= 4.5


def test_pesq_nb_is_computed_at_8_khz(speech: list[np.ndarray], noise: np.ndarray) -> None:
    clean = speech[0]
    noisy = mix(clean, noise, 5.0)
    expected = reference_pesq(8000, resample(clean, 16000, 8000), resample(noisy, 16000, 8000), "nb")
    assert pesq_nb(clean, noisy) == pytest.approx(expected, abs=1e-6)
    assert pesq_nb(clean, noisy) != pytest.approx(reference_pesq(16000, clean, noisy, "nb"), abs=1e-3)


def test_stoi_of_identical_speech_is_one(speech: list[np.ndarray]) -> None:
    assert stoi(speech[0], speech[0]) == pytest.approx(1.0, abs=1e-6)
    assert estoi(speech[0], speech[0]) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("metric", [pesq_wb, pesq_nb, stoi, estoi])
def test_quality_falls_with_snr_on_real_noise(speech: list[np.ndarray], noise: np.ndarray, metric) -> None:
    for clean in speech:
        values = [metric(clean, mix(clean, noise, snr)) for snr in SNRS_DB]
        assert all(a > b for a, b in zip(values, values[1:])), f"{metric.__name__} at {SNRS_DB} dB: {values}"
        assert metric(clean, clean) > values[0]


def test_pesq_and_stoi_errors(speech: list[np.ndarray]) -> None:
    clean = speech[0]
    with pytest.raises(MetricError, match=r"PESQ \(wb\) is undefined: the estimate is silent"):
        pesq_wb(clean, np.zeros_like(clean))
    with pytest.raises(MetricError, match=r"PESQ \(nb\) is undefined: the reference is silent"):
        pesq_nb(np.zeros_like(clean), clean)
    with pytest.raises(MetricError, match="needs 16 kHz"):
        pesq_wb(clean, clean, sample_rate=8000)
    with pytest.raises(MetricError, match=r"under 30 frames"):
        stoi(clean[8000:11200], clean[8000:11200])  # 0.2 s
    with pytest.raises(MetricError, match="ESTOI is undefined: the reference is silent"):
        estoi(np.zeros_like(clean), clean)


# --- log-spectral distance ---------------------------------------------------------------------

def test_lsd_known_values() -> None:
    x = np.random.default_rng(5).standard_normal(16000)
    assert log_spectral_distance(x, x) == 0.0
    # 6.02 dB in every bin (but one of the 31 354 bins, which sits on the floor)
    assert log_spectral_distance(x, 2.0 * x) == pytest.approx(20 * math.log10(2.0), abs=1e-3)
    assert log_spectral_distance(x, -x) == 0.0  # phase-blind
    assert log_spectral_distance(3.0 * x, 6.0 * x) == pytest.approx(log_spectral_distance(x, 2.0 * x), abs=1e-9)
    # a silent estimate sits on the floor, 80 dB below the reference's strongest bin
    silent = log_spectral_distance(x, np.zeros_like(x))
    assert 60.0 < silent <= 80.0


def test_lsd_grows_with_noise(speech: list[np.ndarray], noise: np.ndarray) -> None:
    clean = speech[0]
    values = [log_spectral_distance(clean, mix(clean, noise, snr)) for snr in SNRS_DB]
    assert all(a < b for a, b in zip(values, values[1:])), values


def test_lsd_errors() -> None:
    with pytest.raises(MetricError, match="reference is silent"):
        log_spectral_distance(np.zeros(16000), np.ones(16000))
    with pytest.raises(MetricError, match="at least 512 samples"):
        log_spectral_distance(np.ones(100), np.ones(100))


# --- compute_metrics: resampling, alignment, per-metric failures ---------------------------------------

def test_compute_metrics_trims_within_tolerance_and_refuses_beyond(speech: list[np.ndarray]) -> None:
    clean = speech[0]
    longer = np.concatenate([clean, np.zeros(160)])  # 10 ms
    scores = compute_metrics(clean, longer)
    assert scores.trimmed_ms == pytest.approx(10.0)
    assert scores.values["si_sdr"] == math.inf and scores.values["lsd"] == 0.0 and not scores.errors
    with pytest.raises(LengthMismatchError, match=r"the estimate is 50.0 ms longer.*tolerance is 20 ms"):
        compute_metrics(clean, np.concatenate([clean, np.zeros(800)]))
    with pytest.raises(LengthMismatchError, match=r"the reference is 50.0 ms longer"):
        compute_metrics(clean, clean[:-800])
    assert compute_metrics(clean, clean[:-800], tolerance_ms=60).trimmed_ms == pytest.approx(50.0)


def test_compute_metrics_resamples_other_rates(speech: list[np.ndarray]) -> None:
    clean = speech[0]
    at_48k = resample(clean, 16000, 48000)
    scores = compute_metrics(at_48k, at_48k, sample_rate=48000)
    assert scores.values["pesq_wb"] == pytest.approx(4.644, abs=0.01)
    assert scores.values["estoi"] == pytest.approx(1.0, abs=1e-6)


def test_compute_metrics_reports_undefined_metrics_as_nan(speech: list[np.ndarray]) -> None:
    scores = compute_metrics(speech[0], np.zeros_like(speech[0]))
    assert set(scores.errors) == {"si_sdr", "pesq_wb", "pesq_nb"}
    assert all(math.isnan(scores.values[key]) for key in scores.errors)
    assert "estimate is silent" in scores.errors["si_sdr"]
    assert scores.values["stoi"] < 0.05 and scores.values["lsd"] > 10.0
    with pytest.raises(MetricError, match="estimate: 1 of"):
        compute_metrics(speech[0], np.where(np.arange(speech[0].size) == 5, np.inf, speech[0]))
