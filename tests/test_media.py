"""Decoding onto the 25 fps / 16 kHz grid: frame-rate conversion, exact lengths, clear errors."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from avfixtures import GRID_CLIPS, requires_grid, write_video

from avdiff.errors import InputError
from avdiff.media import SAMPLES_PER_FRAME, fit_length, load_audio, load_clip, read_video


def _index_video(count: int, step: int = 4, size: int = 32) -> np.ndarray:
    """Frames whose uniform gray level encodes their index (i * step), robust to lossy coding."""
    levels = (np.arange(count) * step + 8).astype(np.uint8)
    return np.repeat(levels[:, None, None, None], 3, axis=3) * np.ones((1, size, size, 1), np.uint8)


@pytest.mark.parametrize("fps, count", [(Fraction(30), 60), (Fraction(30000, 1001), 50), (Fraction(50), 80),
                                        (Fraction(25), 30)])
def test_frame_rate_conversion_picks_nearest_frame(tmp_path: Path, fps: Fraction, count: int) -> None:
    step = 240 // count
    path = write_video(tmp_path / "index.mp4", _index_video(count, step=step), fps=fps)
    video = read_video(path)
    duration = count / float(fps)
    assert video.num_frames == int(round(duration * 25))
    assert video.source_frames == count and abs(video.source_fps - float(fps)) < 1e-3
    decoded_index = np.rint((video.frames[:, 16, 16, 0].astype(float) - 8) / step).astype(int)
    expected = [min(count - 1, int(np.floor(j / 25 * float(fps) + 0.5))) for j in range(video.num_frames)]
    assert decoded_index.tolist() == expected


def test_max_side_shrinks_frames(tmp_path: Path) -> None:
    path = write_video(tmp_path / "big.mp4", _index_video(5, size=64), fps=25)
    video = read_video(path, max_side=32)
    assert video.frames.shape == (5, 32, 32, 3) and video.scale == 0.5


def test_max_frames_rejects_long_clips(tmp_path: Path) -> None:
    path = write_video(tmp_path / "long.mp4", _index_video(20), fps=25)
    with pytest.raises(InputError, match="longer than the limit of 10 frames"):
        read_video(path, max_frames=10)


def test_clip_audio_is_exactly_640_samples_per_frame(tmp_path: Path) -> None:
    sr = 22050
    t = np.arange(int(1.37 * sr)) / sr  # shorter than the video: padded
    audio = 0.3 * np.sin(2 * np.pi * 440 * t)
    path = write_video(tmp_path / "av.mp4", _index_video(38), fps=25, audio=audio, sample_rate=sr)
    clip = load_clip(path)
    assert clip.num_frames == 38 and clip.audio.shape == (38 * SAMPLES_PER_FRAME,)
    assert clip.audio.dtype == np.float32 and clip.source_sample_rate == sr
    assert 0.85 < clip.audio_coverage < 0.95
    # Separate audio file, longer than the video: trimmed to the video's length.
    wav = tmp_path / "long.wav"
    sf.write(wav, np.tile(audio, 2), sr)
    clip = load_clip(path, audio_path=wav)
    assert clip.audio.shape == (38 * SAMPLES_PER_FRAME,) and clip.audio_coverage == 1.0


def test_load_audio_resamples_wav_keeping_pitch(tmp_path: Path) -> None:
    sr = 44100
    t = np.arange(sr) / sr
    stereo = np.stack([np.sin(2 * np.pi * 1000 * t), np.sin(2 * np.pi * 1000 * t)], axis=1) * 0.5
    sf.write(tmp_path / "tone.wav", stereo, sr)
    audio = load_audio(tmp_path / "tone.wav")
    assert audio.dtype == np.float32 and audio.ndim == 1 and audio.size == 16000
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / audio.size - 1000) < 2
    assert abs(np.sqrt(np.mean(audio[1000:-1000] ** 2)) - 0.5 / np.sqrt(2)) < 0.01


def test_fit_length() -> None:
    x = np.arange(5, dtype=np.float32)
    assert fit_length(x, 3).tolist() == [0, 1, 2]
    assert fit_length(x, 7).tolist() == [0, 1, 2, 3, 4, 0, 0]


def test_bad_inputs_give_one_line_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    silent = write_video(tmp_path / "silent.mp4", _index_video(10), fps=25)
    audio_only = write_video(tmp_path / "audio_only.mp4", None, audio=np.zeros(16000), sample_rate=16000)
    whole = write_video(tmp_path / "whole.mp4", _index_video(50), fps=25, audio=np.zeros(32000))
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    cases = [
        (lambda: load_audio(tmp_path / "missing.wav"), "no such file"),
        (lambda: load_clip(tmp_path / "missing.mp4"), "no such file"),
        (lambda: load_audio(tmp_path), "not a regular file"),
        (lambda: load_audio(empty), "file is empty"),
        (lambda: load_clip(empty), "file is empty"),
        (lambda: load_audio(garbage), "cannot open as a media file"),
        (lambda: load_clip(garbage), "cannot open as a media file"),
        (lambda: load_audio(silent), "has no audio stream"),
        (lambda: load_clip(silent), "has no audio stream"),
        (lambda: load_clip(audio_only), "has no video stream"),
        (lambda: load_clip(truncated), "cannot open as a media file|truncated"),
    ]
    for call, pattern in cases:
        with pytest.raises(InputError, match=pattern) as info:
            call()
        assert "\n" not in str(info.value)


@requires_grid
def test_grid_clip_on_the_grid() -> None:
    """A real GRID clip: 75 frames at 25 fps, MP2 44.1 kHz stereo -> 48000 samples at 16 kHz."""
    clip = load_clip(GRID_CLIPS[0])
    assert clip.frames.shape == (75, 288, 360, 3) and clip.frames.dtype == np.uint8
    assert clip.audio.shape == (48000,) and clip.source_sample_rate == 44100
    assert clip.audio_coverage > 0.99 and clip.video.source_fps == 25.0
    audio = load_audio(GRID_CLIPS[0])
    assert audio.dtype == np.float32 and abs(audio.size - 131328 * 16000 / 44100) <= 1  # 2.978 s of MP2
    assert np.sqrt(np.mean(audio ** 2)) > 0.01  # speech, not silence


def test_truncated_audio_is_flagged_but_a_streamed_wav_header_is_not(tmp_path: Path) -> None:
    """libsndfile reads a cut WAV without a word and FFmpeg stops a cut FLAC with an error after
    some samples: both come back with `damage` set. A WAV written to a pipe (data size 0 or
    0xFFFFFFFF, unknown when the header was written) is complete, not truncated."""
    from avdiff.media.audio import decode_audio

    signal = (0.2 * np.sin(np.arange(8000) / 8)).astype(np.float32)
    for fmt in ("WAV", "FLAC"):
        whole = tmp_path / f"whole.{fmt.lower()}"
        sf.write(whole, signal, 16000, format=fmt)
        assert decode_audio(whole).damage is None
        cut = tmp_path / f"cut.{fmt.lower()}"
        cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
        decoded = decode_audio(cut)
        assert "truncated" in decoded.damage and 0 < decoded.samples.size < signal.size
    data = bytearray((tmp_path / "whole.wav").read_bytes())
    start = data.index(b"data")
    data[start + 4:start + 8] = b"\xff\xff\xff\xff"
    (tmp_path / "streamed.wav").write_bytes(bytes(data))
    streamed = decode_audio(tmp_path / "streamed.wav")
    assert streamed.damage is None and streamed.samples.size == signal.size


@requires_grid
def test_a_cut_mpeg_file_is_refused_as_damaged_not_read_as_a_shorter_clip(tmp_path: Path) -> None:
    """A GRID .mpg cut at 35 % decodes to 26 frames without any exception; FFmpeg's error log says why."""
    cut = tmp_path / "cut.mpg"
    cut.write_bytes(GRID_CLIPS[1].read_bytes()[: GRID_CLIPS[1].stat().st_size * 35 // 100])
    with pytest.raises(InputError, match="damaged or truncated video stream"):
        read_video(cut)
    assert read_video(GRID_CLIPS[1]).num_frames == 75  # the whole file has no decoding error
