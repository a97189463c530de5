"""Audio decoding to float32 mono at a chosen rate, from audio files or video containers.

soundfile reads audio files (WAV, FLAC, OGG, ...); PyAV reads anything FFmpeg can (the MP2
track of a GRID .mpg, the AAC track of an .mp4). torchaudio's own load/save are not used: in
torchaudio 2.9 they need torchcodec. Resampling is torchaudio's windowed-sinc resampler.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from avdiff.errors import InputError
from avdiff.timegrid import SAMPLE_RATE
from avdiff.media.files import _ffmpeg_reason, ffmpeg_errors, open_container, require_file, soundfile_format, temporary_path


@dataclass(frozen=True)
class DecodedAudio:
    """Mono samples at the source rate and the stream's start time in the container; `damage` says
    why they stop early (what could be read is kept: callers decide to refuse or to note it)."""

    samples: np.ndarray  # float32, (N,)
    sample_rate: int
    start_time: float  # seconds; 0 for plain audio files
    damage: str | None = None  # why the file holds less than it declares (truncated, a decoding error)


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Resample a 1-D float32 signal with torchaudio's sinc interpolation (no-op if rates match)."""
    samples = np.asarray(samples, dtype=np.float32)
    if source_rate == target_rate or samples.size == 0:
        return samples
    out = AF.resample(torch.from_numpy(samples), int(source_rate), int(target_rate))
    return out.numpy().astype(np.float32, copy=False)


def _read_with_soundfile(path: Path) -> DecodedAudio | None:
    """Read an audio file with libsndfile; None for other suffixes or formats it does not know."""
    if not soundfile_format(path):
        return None
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return None
    return DecodedAudio(samples=data.mean(axis=1).astype(np.float32), sample_rate=int(rate), start_time=0.0,
                        damage=wav_truncation(path))


def wav_truncation(path: Path) -> str | None:
    """For a WAV whose data chunk declares more bytes than the file holds (libsndfile reads the rest
    without a word), what is missing; None for complete files, other formats and streamed WAVs
    (data size 0 or 0xFFFFFFFF: unknown when the header was written)."""
    if path.suffix.lower() != ".wav":
        return None
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    position = 12
    while position + 8 <= len(head):
        chunk, size = head[position:position + 4], int.from_bytes(head[position + 4:position + 8], "little")
        if chunk == b"data":
            available = path.stat().st_size - position - 8
            if size in (0, 0xFFFFFFFF) or available >= size:
                return None
            return f"truncated: holds {available} of the {size} audio data bytes its header declares"
        position += 8 + size + (size & 1)
    return None


def decode_audio_stream(container: av.container.InputContainer, path: Path, mono: bool = True) -> DecodedAudio:
    """Decode the first audio stream of an open container to float32 at its own rate: mono (N,), or
    (channels, N) with `mono` False."""
    if not container.streams.audio:
        raise InputError(f"{path}: has no audio stream")
    stream = container.streams.audio[0]
    converter = av.AudioResampler(format="fltp")  # planar float, same layout and rate
    chunks: list[np.ndarray] = []
    damage = None  # a damaged tail: what decoded is kept, and the reason with it
    rate = stream.codec_context.sample_rate or stream.rate
    first_time: float | None = None
    with ffmpeg_errors() as logged:
        try:
            for frame in container.decode(stream):
                if first_time is None and frame.time is not None:
                    first_time = float(frame.time)
                rate = frame.sample_rate
                chunks.extend(_planes(converted, mono) for converted in converter.resample(frame))
            chunks.extend(_planes(converted, mono) for converted in converter.resample(None))
        except av.FFmpegError as error:
            if not chunks:
                raise InputError(f"{path}: cannot decode the audio stream ({_ffmpeg_reason(error)})") from error
            damage = f"decoding stopped with an error ({_ffmpeg_reason(error)}): damaged or truncated"
    if logged and damage is None:
        damage = f"{len(logged)} decoding error(s) (first: {logged[0]}): damaged or truncated"
    if not chunks or sum(c.size for c in chunks) == 0:
        raise InputError(f"{path}: the audio stream decoded to no samples (truncated or corrupt file?)")
    if not rate:
        raise InputError(f"{path}: the audio stream has no sample rate")
    samples = np.concatenate(chunks, axis=-1).astype(np.float32, copy=False)
    return DecodedAudio(samples=samples, sample_rate=int(rate), start_time=first_time or 0.0, damage=damage)


def _planes(frame: av.AudioFrame, mono: bool) -> np.ndarray:
    """A planar float frame as (channels, n), or its mean over channels (n,)."""
    planes = frame.to_ndarray()
    return planes.mean(axis=0) if mono else planes


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


def decode_audio_channels(path: str | Path) -> DecodedAudio:
    """Like `decode_audio`, but every channel kept: `samples` is (channels, N)."""
    path = require_file(path)
    if soundfile_format(path):
        try:
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, TypeError):
            data = None
        if data is not None:
            if data.size == 0:
                raise InputError(f"{path}: audio file holds no samples")
            return DecodedAudio(samples=np.ascontiguousarray(data.T), sample_rate=int(rate), start_time=0.0,
                                damage=wav_truncation(path))
    with open_container(path) as container:
        return decode_audio_stream(container, path, mono=False)


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Load `path` (audio file or video container) as float32 mono at `sample_rate`.

    Raises InputError, naming the file, when it is missing, empty, corrupt or has no audio.
    """
    decoded = decode_audio(path)
    return resample(decoded.samples, decoded.sample_rate, sample_rate)


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit PCM atomically (temporary file, then rename); `audio` is (N,) or (N, channels)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        sf.write(str(tmp), np.clip(audio, -1.0, 32767 / 32768), sample_rate, subtype="PCM_16")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
