"""Video decoding with PyAV, resampled to 25 frames/s on the fly.

Frame-rate conversion is by timestamps, the way FFmpeg's `fps` filter does it with
`round=near`: output frame j (time j/25 s after the first frame) repeats the source frame
whose timestamp is nearest. A clip lasting D seconds (first timestamp to the end of the last
frame) gives round(25 * D) frames, so 30, 29.97 and 50 frame/s sources line up with 25 frame/s
ones and with the 640-samples-per-frame audio grid. PyAV decodes the GRID MPEG-1 files that
torchcodec cannot.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from avdiff.errors import InputError
from avdiff.timegrid import VIDEO_FPS
from avdiff.media.files import _ffmpeg_reason, ffmpeg_errors, open_container


@dataclass(frozen=True)
class DecodedVideo:
    """RGB frames on the 25 frame/s grid, with what the source was."""

    frames: np.ndarray  # uint8, (T, H, W, 3), RGB
    source_fps: float  # average rate of the source stream
    source_frames: int  # frames the decoder produced before resampling
    start_time: float  # seconds: timestamp of the first decoded frame
    scale: float  # output size / source size (1.0 unless downscaled by `max_side`)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def duration(self) -> float:
        return self.num_frames / VIDEO_FPS


def _output_size(width: int, height: int, max_side: int | None) -> tuple[int, int, float]:
    """Width, height (even numbers) and scale after shrinking so the longer side is <= max_side."""
    if max_side is None or max(width, height) <= max_side:
        return width, height, 1.0
    scale = max_side / max(width, height)
    new_w = max(2, int(round(width * scale / 2)) * 2)
    new_h = max(2, int(round(height * scale / 2)) * 2)
    return new_w, new_h, new_w / width


def _timed_frames(container: av.container.InputContainer, path: Path, max_side: int | None):
    """Yield (time, duration, rgb array, scale) for each decoded source frame."""
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    rate = float(stream.average_rate or stream.guessed_rate or 0) or None
    index = 0
    try:
        for frame in container.decode(stream):
            width, height, scale = _output_size(frame.width, frame.height, max_side)
            if scale != 1.0:
                image = frame.to_ndarray(format="rgb24", width=width, height=height)
            else:
                image = frame.to_ndarray(format="rgb24")
            time = float(frame.time) if frame.time is not None else (index / rate if rate else None)
            if time is None:
                raise InputError(f"{path}: video frames carry no timestamps and the stream no frame rate")
            duration = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else None
            yield time, duration, image, scale
            index += 1
    except av.FFmpegError as error:
        if index == 0:
            raise InputError(f"{path}: cannot decode the video stream ({_ffmpeg_reason(error)})") from error
        # A damaged tail (truncated file): keep the frames that decoded.


class _Stats:
    """What one decoding pass saw, filled in as frames stream past."""

    def __init__(self) -> None:
        self.source_frames = 0
        self.start_time = 0.0
        self.scale = 1.0


def _resampled(container: av.container.InputContainer, path: Path, fps: int, max_side: int | None,
               stats: _Stats) -> Iterator[np.ndarray]:
    """Frames of an open container on the `fps` grid (nearest source timestamp)."""
    if not container.streams.video:
        raise InputError(f"{path}: has no video stream (audio-only file?)")
    stream = container.streams.video[0]
    nominal = float(stream.average_rate or stream.guessed_rate or 0) or None
    previous: tuple[float, float | None, np.ndarray, float] | None = None
    t0 = 0.0
    j = 0  # next output frame index
    for current in _timed_frames(container, path, max_side):
        if previous is None:
            t0 = current[0]
            stats.start_time, stats.scale = t0, current[3]
        else:
            midpoint = (previous[0] + current[0]) / 2.0 - t0
            while j / fps < midpoint - 1e-9:  # an exact tie goes to the later frame, as FFmpeg's
                yield previous[2]
                j += 1
        stats.source_frames += 1
        previous = current
    if previous is None:
        raise InputError(f"{path}: the video stream decoded to no frames (truncated or corrupt file?)")
    last_duration = previous[1] or (1.0 / nominal if nominal else 1.0 / fps)
    end = previous[0] + last_duration - t0
    total = max(1, int(round(end * fps + 1e-6)))
    while j < total:
        yield previous[2]
        j += 1


def read_video(path: str | Path, fps: int = VIDEO_FPS, max_side: int | None = None,
               max_frames: int | None = None) -> DecodedVideo:
    """Decode a whole video to RGB uint8 frames at `fps` (default 25).

    `max_side` shrinks large frames at decode time (memory; landmarks do not need 1080p);
    `max_frames` raises InputError for clips longer than that instead of filling memory.
    A file whose decoded frames fall short of 90 % of what its container declares, or whose
    decoding made FFmpeg report errors (a damaged or cut stream, e.g. a truncated MPEG-1 file,
    which decodes to a shorter clip without any exception), is refused as damaged or truncated.
    """
    path = Path(path)
    stats = _Stats()
    frames: list[np.ndarray] = []
    with ffmpeg_errors() as errors, open_container(path) as container:
        stream = container.streams.video[0] if container.streams.video else None
        source_fps = float(stream.average_rate or stream.guessed_rate or 0) if stream else 0.0
        declared = int(stream.frames or 0) if stream else 0
        for frame in _resampled(container, path, fps, max_side, stats):
            frames.append(frame)
            if max_frames is not None and len(frames) > max_frames:
                raise InputError(f"{path}: longer than the limit of {max_frames} frames "
                                 f"({max_frames / fps:.1f} s)")
    if errors:
        raise InputError(f"{path}: damaged or truncated video stream: {len(errors)} decoding error(s) "
                         f"(first: {errors[0]}); only {stats.source_frames} frames decoded")
    if declared and stats.source_frames < 0.9 * declared:
        raise InputError(f"{path}: truncated: decoded {stats.source_frames} of the {declared} "
                         "video frames its container declares")
    return DecodedVideo(frames=np.stack(frames), source_fps=source_fps,
                        source_frames=stats.source_frames, start_time=stats.start_time,
                        scale=stats.scale)
