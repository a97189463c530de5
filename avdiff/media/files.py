"""Checks and opening helpers shared by the audio and video decoders.

They turn the ways an input can be unusable (missing, a folder, empty, not a media file) into
one-line `InputError`s that name the file, so a batch job can log them and carry on.
"""

from __future__ import annotations

from pathlib import Path

import av

from avdiff.errors import InputError


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
