"""Which file suffixes avdiff takes as video or audio, and checks, opening and atomic-writing helpers.

The suffix lists are written here once; modules that accept fewer types use a named subset.
The helpers turn the ways an input can be unusable (missing, a folder, empty, not a media file)
into one-line `InputError`s that name the file, so a batch job can log them and carry on.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import av
import av.logging
import numpy as np

from avdiff.errors import InputError

# Video containers, decoded with FFmpeg (PyAV).
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".mpg", ".mpeg", ".mov", ".avi", ".mkv", ".webm")
# Mouth crops saved with numpy: (T, S, S) uint8 frames at 25 fps, as `avdiff prepare` and `avdiff synth` write.
MOUTH_ARRAY_SUFFIX = ".npy"
# What generate and enhance take as video: a video file or a mouth-crop array.
VIDEO_INPUT_SUFFIXES: tuple[str, ...] = (*VIDEO_SUFFIXES, MOUTH_ARRAY_SUFFIX)
# Audio files looked for in folders (evaluate, enhance). Audio only: a folder that also holds the
# videos would otherwise give two files per name (x.wav and x.mp4).
AUDIO_SUFFIXES: tuple[str, ...] = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac")
# The lossless subset, in order of preference: the audio `avdiff prepare` takes from beside a video.
SIDECAR_AUDIO_SUFFIXES: tuple[str, ...] = (".wav", ".flac")
# Read with libsndfile; everything else (video containers, AAC, MP3, MP2 ...) goes through PyAV.
SOUNDFILE_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".caf", ".w64"})
assert set(SIDECAR_AUDIO_SUFFIXES) <= set(AUDIO_SUFFIXES) & SOUNDFILE_SUFFIXES
# How files of these suffixes begin. libsndfile probes a file that does not (random bytes named
# .wav) with its MP3 decoder, which prints warnings of its own; such files go to FFmpeg instead.
SOUNDFILE_MAGIC: dict[str, tuple[bytes, ...]] = {
    ".wav": (b"RIFF", b"RIFX", b"RF64", b"BW64"), ".flac": (b"fLaC", b"ID3"), ".ogg": (b"OggS",),
    ".oga": (b"OggS",),
}


def soundfile_format(path: Path) -> bool:
    """Whether libsndfile should read `path`: its suffix is one of SOUNDFILE_SUFFIXES and the file
    begins the way that format does (where SOUNDFILE_MAGIC knows how)."""
    suffix = path.suffix.lower()
    if suffix not in SOUNDFILE_SUFFIXES:
        return False
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return head.startswith(SOUNDFILE_MAGIC.get(suffix, (b"",)))


def temporary_path(path: Path) -> Path:
    """A hidden temporary file beside `path`, unique to this process and call, for writing `path`
    atomically: two runs writing the same output never rename each other's half-written file."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


def write_npy(path: Path, array: np.ndarray) -> None:
    """Save `array` (no pickle) to a temporary name beside `path`, then rename it into place."""
    tmp = temporary_path(path)
    try:
        np.save(tmp, array, allow_pickle=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def require_file(path: str | Path) -> Path:
    """Return `path` as a Path, or raise InputError if it is missing, a folder or empty."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: is not a regular file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty (0 bytes)")
    return path


def open_container(path: str | Path) -> av.container.InputContainer:
    """Open a media file with PyAV, raising InputError with FFmpeg's reason when it cannot."""
    path = require_file(path)
    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as error:
        reason = _ffmpeg_reason(error)
        hint = "; truncated or incomplete file?" if any(word in reason.lower() for word in ("end of file", "moov")) else ""
        raise InputError(f"{path}: cannot open as a media file ({reason}{hint})") from error


def _ffmpeg_reason(error: Exception) -> str:
    """FFmpeg's message without the file name PyAV appends (we already print the path)."""
    message = getattr(error, "strerror", None) or str(error)
    return str(message).split(": '")[0].strip() or type(error).__name__


@contextlib.contextmanager
def ffmpeg_errors() -> Iterator[list[str]]:
    """Collect the errors FFmpeg logs while decoding (a damaged or truncated stream, which it
    decodes past without raising) into the yielded list, instead of printing them."""
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    messages: list[str] = []
    try:
        with av.logging.Capture() as logs:
            yield messages
            messages.extend(f"{name}: {text.strip()}" for level, name, text in logs
                            if level is not None and level <= av.logging.ERROR)
    finally:
        av.logging.set_level(previous)
