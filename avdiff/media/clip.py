"""A talking-face clip on the shared time grid: T frames at 25 fps and exactly 640*T samples.

The audio comes from the video's own track or from a separate file (GRID and TCD-TIMIT ship
audio apart). Audio is placed on the video's clock (a track that starts later than the first
video frame is delayed by the difference, one that starts earlier is trimmed), resampled to
16 kHz mono, and then padded with zeros or trimmed at the end to 640*T samples, so sample
640*j is the start of video frame j. How much was padded is kept, so callers can reject clips
whose audio is much shorter than their video.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avdiff.errors import InputError
from avdiff.media.audio import decode_audio, decode_audio_stream, resample
from avdiff.timegrid import SAMPLE_RATE, SAMPLES_PER_FRAME
from avdiff.media.files import open_container
from avdiff.media.video import DecodedVideo, read_video


@dataclass(frozen=True)
class AVClip:
    """Video frames (25 fps, RGB uint8) and their audio (16 kHz mono, 640 samples a frame)."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    audio: np.ndarray  # (640 * T,) float32
    video: DecodedVideo
    audio_samples_decoded: int  # audio samples on the video clock before padding/trimming
    source_sample_rate: int
    audio_damage: str | None = None  # why the audio stops early (DecodedAudio.damage)

    @property
    def num_frames(self) -> int:
        return self.video.num_frames

    @property
    def duration(self) -> float:
        return self.video.duration

    @property
    def audio_coverage(self) -> float:
        """Fraction of the video's duration that real (not padded) audio covers, at most 1."""
        return min(1.0, self.audio_samples_decoded / max(1, self.audio.size))


def fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad or trim a 1-D signal at the end to exactly `length` samples."""
    if samples.size >= length:
        return samples[:length]
    return np.concatenate([samples, np.zeros(length - samples.size, dtype=samples.dtype)])


def load_clip(video_path: str | Path, audio_path: str | Path | None = None,
              max_side: int | None = None, max_frames: int | None = None) -> AVClip:
    """Decode a video and its audio onto the 25 fps / 16 kHz grid with exact lengths.

    `audio_path` None takes the container's first audio track (InputError if it has none).
    """
    video_path = Path(video_path)
    video = read_video(video_path, max_side=max_side, max_frames=max_frames)
    if audio_path is None:
        with open_container(video_path) as container:
            decoded = decode_audio_stream(container, video_path)
        offset_s = decoded.start_time - video.start_time
    else:
        decoded = decode_audio(audio_path)
        offset_s = 0.0
    audio = resample(decoded.samples, decoded.sample_rate, SAMPLE_RATE)
    offset = int(round(offset_s * SAMPLE_RATE))
    if offset > 0:
        audio = np.concatenate([np.zeros(offset, dtype=np.float32), audio])
    elif offset < 0:
        audio = audio[-offset:]
    if audio.size == 0:
        raise InputError(f"{audio_path or video_path}: no audio overlaps the video")
    length = video.num_frames * SAMPLES_PER_FRAME
    return AVClip(frames=video.frames, audio=fit_length(audio, length), video=video,
                  audio_samples_decoded=int(min(audio.size, length)),
                  source_sample_rate=decoded.sample_rate, audio_damage=decoded.damage)
