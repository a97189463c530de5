"""Audio decoding to float32 mono at a chosen rate, from audio files or video containers.

soundfile reads audio files (WAV, FLAC, OGG, ...); PyAV reads anything FFmpeg can (the MP2
track of a GRID .mpg, the AAC track of an .mp4). torchaudio's own load/save are not used: in
torchaudio 2.9 they need torchcodec. Resampling is torchaudio's windowed-sinc resampler.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from avdiff.errors import InputError
from avdiff.timegrid import SAMPLE_RATE
from avdiff.media.files import SOUNDFILE_SUFFIXES, _ffmpeg_reason, open_container, require_file


@dataclass(frozen=True)
class DecodedAudio:
    """Mono samples at the source rate and the stream's start time in the container."""

    samples: np.ndarray  # float32, (N,)
    sample_rate: int
    start_time: float  # seconds; 0 for plain audio files


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Resample a 1-D float32 signal with torchaudio's sinc interpolation (no-op if rates match)."""
    samples = np.asarray(samples, dtype=np.float32)
    if source_rate == target_rate or samples.size == 0:
        return samples
    out = AF.resample(torch.from_numpy(samples), int(source_rate), int(target_rate))
    return out.numpy().astype(np.float32, copy=False)


def _read_with_soundfile(path: Path) -> DecodedAudio | None:
    """Read an audio file with libsndfile; None for other suffixes or formats it does not know."""
    if path.suffix.lower() not in SOUNDFILE_SUFFIXES:
        return None
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return None
    return DecodedAudio(samples=data.mean(axis=1).astype(np.float32), sample_rate=int(rate), start_time=0.0)


def decode_audio_stream(container: av.container.InputContainer, path: Path) -> DecodedAudio:
    """Decode the first audio stream of an open container to mono float32 at its own rate."""
    if not container.streams.audio:
        raise InputError(f"{path}: has no audio stream")
    stream = container.streams.audio[0]
    converter = av.AudioResampler(format="fltp")  # planar float, same layout and rate
    chunks: list[np.ndarray] = []
    rate = stream.codec_context.sample_rate or stream.rate
    first_time: float | None = None
    try:
        for frame in container.decode(stream):
            if first_time is None and frame.time is not None:
                first_time = float(frame.time)
            rate = frame.sample_rate
            for converted in converter.resample(frame):
                chunks.append(converted.to_ndarray().mean(axis=0))
        for converted in converter.resample(None):
            chunks.append(converted.to_ndarray().mean(axis=0))
    except av.FFmpegError as error:
        if not chunks:
            raise InputError(f"{path}: cannot decode the audio stream ({_ffmpeg_reason(error)})") from error
        # A damaged tail: keep what decoded; the caller's length checks decide whether it is usable.
    if not chunks or sum(c.size for c in chunks) == 0:
        raise InputError(f"{path}: the audio stream decoded to no samples (truncated or corrupt file?)")
    if not rate:
        raise InputError(f"{path}: the audio stream has no sample rate")
    samples = np.concatenate(chunks).astype(np.float32, copy=False)
    return DecodedAudio(samples=samples, sample_rate=int(rate), start_time=first_time or 0.0)


def decode_audio(path: str | Path) -> DecodedAudio:
    """Decode any audio file or video container to mono float32 at its source rate."""
    path = require_file(path)
    decoded = _read_with_soundfile(path)
    if decoded is not None:
        if decoded.samples.size == 0:
            raise InputError(f"{path}: audio file holds no samples")
        return decoded
    with open_container(path) as container:
        return decode_audio_stream(container, path)


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Load `path` (audio file or video container) as float32 mono at `sample_rate`.

    Raises InputError, naming the file, when it is missing, empty, corrupt or has no audio.
    """
    decoded = decode_audio(path)
    return resample(decoded.samples, decoded.sample_rate, sample_rate)
