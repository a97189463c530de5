"""The compressed complex STFT: SGMSE+ conventions, exact round trip and length, float32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avdiff.audio import SpectrogramTransform
from avdiff.config import SpectrogramConfig
from avdiff.errors import InputError


def relative_error(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    return float((estimate - reference).norm() / reference.norm())


@pytest.mark.parametrize("length", [16000, 32767, 32768, 256, 257, 5001])
def test_round_trip_random_audio_exact_length(length):
    transform = SpectrogramTransform()
    waveform = torch.randn(3, length, generator=torch.Generator().manual_seed(length)) * 0.3
    spec = transform.encode(waveform)
    assert spec.shape == (3, 2, 256, transform.num_frames(length))
    restored = transform.decode(spec, length)
    assert restored.shape == waveform.shape
    assert relative_error(restored, waveform) < 1e-5


def test_round_trip_real_grid_audio(grid_audio):
    transform = SpectrogramTransform()
    for audio in grid_audio:
        waveform = torch.from_numpy(audio)[None]
        restored = transform.decode(transform.encode(waveform), waveform.shape[-1])
        assert relative_error(restored, waveform) < 1e-5


def test_matches_sgmse_reference_in_float64():
    """STFT with a periodic Hann window, centred; c -> beta |c|^alpha exp(i angle c)."""
    transform = SpectrogramTransform()
    waveform = torch.randn(1, 4000, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    reference = torch.stft(waveform, 510, 128, window=torch.hann_window(510, periodic=True, dtype=torch.float64),
                           center=True, return_complex=True)
    reference = 0.15 * reference.abs() ** 0.5 * torch.exp(1j * reference.angle())
    ours = transform.compress(transform.stft(waveform.float()))
    assert relative_error(ours.to(torch.complex128), reference) < 1e-5
    real = transform.to_real(ours)
    assert real.shape == (1, 2, 256, 32)
    assert torch.equal(real[:, 0], ours.real) and torch.equal(real[:, 1], ours.imag)


def test_configurable_settings_round_trip():
    config = SpectrogramConfig(n_fft=1024, hop_length=256, compression_alpha=1.0, compression_beta=1.0)
    transform = SpectrogramTransform(config)
    waveform = torch.randn(2, 12345)
    spec = transform.encode(waveform)
    assert spec.shape[-2] == 513
    assert relative_error(transform.decode(spec, 12345), waveform) < 1e-5


def test_float32_even_under_autocast():
    transform = SpectrogramTransform()
    waveform = torch.randn(2, 8000)
    plain = transform.encode(waveform)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        spec = transform.encode(waveform)
        restored = transform.decode(spec.to(torch.bfloat16), 8000)
    assert spec.dtype == torch.float32 and restored.dtype == torch.float32
    assert torch.equal(spec, plain)


def test_silence_gives_zeros_and_no_nans():
    transform = SpectrogramTransform()
    spec = transform.encode(torch.zeros(1, 4000))
    assert torch.all(spec == 0)
    assert torch.all(transform.decode(spec, 4000) == 0)


def test_frame_bookkeeping_matches_video_rate():
    transform = SpectrogramTransform()
    assert transform.frame_rate == 125.0  # 5 STFT frames per 25 fps video frame
    assert transform.num_frames(48000) == 376  # 75 video frames * 5 + 1
    assert transform.num_frames(transform.num_samples(256)) == 256
    assert transform.num_samples(256) / 16000 == pytest.approx(2.04)


def test_rejects_complex_or_wrong_channel_inputs():
    transform = SpectrogramTransform()
    with pytest.raises(ValueError, match="real waveform"):
        transform.stft(torch.randn(1, 100, dtype=torch.complex64))
    with pytest.raises(InputError, match="too short"):  # a file's fault: batch commands say so plainly
        transform.stft(torch.randn(1, 255))
    with pytest.raises(ValueError, match="2 channels"):
        transform.to_complex(torch.randn(1, 3, 256, 10))
    assert np.isfinite(transform.decode(transform.encode(torch.full((1, 500), 1e-20)), 500).numpy()).all()


def test_encode_in_segments_gives_the_same_values() -> None:
    """Long inputs are compressed a segment of frames at a time (memory); the values must not change."""
    transform = SpectrogramTransform(SpectrogramConfig())
    waveform = torch.randn(2, 16000 * 3, generator=torch.Generator().manual_seed(0))
    whole = transform.encode(waveform, segment_frames=10**9)
    assert whole.shape == (2, 2, 256, 376)
    for segment in (1, 7, 100, 375, 376):
        assert torch.equal(transform.encode(waveform, segment_frames=segment), whole), segment
