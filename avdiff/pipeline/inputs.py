"""Inputs of the pipeline: noisy audio at any rate or channel count, and mouth-crop video.

Audio is mixed to mono and resampled to the model's rate, with a note for each conversion (and
for a truncated file, whose readable part is used); NaN or infinite samples, empty files and
unreadable files are errors naming the file. Video
is either a prepared mouth-crop file (.npy, uint8 T x H x W) or a talking-face video, which
goes through exactly the preprocessing of `avdiff prepare` (decode at 25 fps, landmarks,
alignment, 96 x 96 crops) and is centre-cropped to the model's crop size as in training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from avdiff.errors import InputError
from avdiff.landmarks import DEFAULT_BACKEND
from avdiff.media.audio import decode_audio, resample
from avdiff.media.files import soundfile_format
from avdiff.mouth.reliability import frame_reliability

if TYPE_CHECKING:  # the crops' modules import scipy: loaded where video is read
    from avdiff.mouth.extract import MouthROIs
    from avdiff.mouth.mouth_model import MouthModel

CLIP_LEVEL = 0.999  # |x| at or above this counts as clipped
SILENCE_PEAK = 1e-5  # a peak below this is treated as silence


@dataclass
class AudioInput:
    """Mono audio at the model rate, plus what it was before conversion."""

    samples: np.ndarray  # float32 (N,) at `sample_rate`
    sample_rate: int
    source_rate: int
    source_length: int  # samples at the source rate
    notes: list[str] = field(default_factory=list)

    @property
    def is_silent(self) -> bool:
        return float(np.abs(self.samples).max(initial=0.0)) < SILENCE_PEAK


def channel_count(path: Path) -> int:
    """Channels of an audio file or of a container's first audio stream (1 when it cannot tell)."""
    if soundfile_format(path):
        try:
            return sf.info(str(path)).channels
        except (sf.LibsndfileError, RuntimeError):
            pass
    import av

    try:
        with av.open(str(path)) as container:
            return container.streams.audio[0].codec_context.channels if container.streams.audio else 1
    except av.FFmpegError:
        return 1


def check_waveform(samples: np.ndarray, name: str) -> None:
    if samples.size == 0:
        raise InputError(f"{name}: holds no audio samples")
    if not np.isfinite(samples).all():
        bad = int((~np.isfinite(samples)).sum())
        raise InputError(f"{name}: {bad} samples are NaN or infinite; repair the file first")


def load_audio_input(path: str | Path, sample_rate: int) -> AudioInput:
    """Read noisy audio for enhancement; see the module docstring."""
    path = Path(path)
    decoded = decode_audio(path)
    check_waveform(decoded.samples, str(path))
    notes = []
    channels = channel_count(path)
    if decoded.damage:
        seconds = decoded.samples.size / decoded.sample_rate
        notes.append(f"{path.name}: {decoded.damage}; the {seconds:.2f} s that could be read are used")
    if channels > 1:
        notes.append(f"{path.name}: {channels} channels mixed down to mono")
    return _finish(decoded.samples, decoded.sample_rate, sample_rate, str(path), notes)


def audio_from_array(samples: np.ndarray, source_rate: int, sample_rate: int, name: str = "audio") -> AudioInput:
    """The same checks and conversions for an in-memory waveform (N,) or (channels, N)."""
    samples = np.asarray(samples, dtype=np.float32)
    notes = []
    if samples.ndim == 2:
        notes.append(f"{name}: {samples.shape[0]} channels mixed down to mono")
        samples = samples.mean(axis=0)
    if samples.ndim != 1:
        raise InputError(f"{name}: expected (samples,) or (channels, samples), got shape {samples.shape}")
    check_waveform(samples, name)
    return _finish(samples, source_rate, sample_rate, name, notes)


def _finish(samples: np.ndarray, source_rate: int, sample_rate: int, name: str, notes: list[str]) -> AudioInput:
    clipped = float(np.mean(np.abs(samples) >= CLIP_LEVEL))
    if clipped > 0.001:
        notes.append(f"{name}: {clipped:.1%} of the samples are clipped; clipped peaks are not restored")
    if source_rate != sample_rate:
        notes.append(f"{name}: resampled from {source_rate} Hz to {sample_rate} Hz (and back for the output)")
    converted = resample(samples, source_rate, sample_rate)
    audio = AudioInput(converted, sample_rate, source_rate, len(samples), notes)
    if audio.is_silent:
        notes.append(f"{name}: the input is silent (peak below {SILENCE_PEAK}); the output is silence")
    return audio


@dataclass
class MouthVideo:
    """Mouth crops at 25 fps (uint8, T x size x size), which frames have a usable face, and how far
    to trust each frame's lips (`avdiff.mouth.reliability`; None: 1 where there is a face)."""

    rois: np.ndarray
    face_ok: np.ndarray
    reliability: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return len(self.rois)

    @property
    def trust(self) -> np.ndarray:
        """(T,) float32 in [0, 1]: the reliability, 0 wherever there is no face."""
        score = np.ones(self.num_frames, np.float32) if self.reliability is None else self.reliability
        return np.where(self.face_ok, score, 0.0).astype(np.float32)


def mouth_video_from_array(rois: np.ndarray, crop_size: int, face_ok: np.ndarray | None = None,
                           name: str = "video", found: np.ndarray | None = None,
                           mouth_model: MouthModel | None = None) -> MouthVideo:
    """Check and centre-crop prepared mouth crops, and score each frame's reliability (`found`: which
    faces were detected rather than filled in, when known; `mouth_model`: the model's own crops)."""
    from avdiff.mouth.center import center_crop

    rois = np.asarray(rois)
    if rois.ndim != 3 or rois.dtype != np.uint8:
        raise InputError(f"{name}: expected uint8 mouth crops (frames, height, width), got {rois.dtype} {rois.shape}")
    if len(rois) == 0:
        raise InputError(f"{name}: has no frames")
    if min(rois.shape[1:]) < crop_size:
        raise InputError(f"{name}: mouth crops are {rois.shape[1]}x{rois.shape[2]}, smaller than the model's {crop_size}")
    face = np.ones(len(rois), dtype=bool) if face_ok is None else np.asarray(face_ok, dtype=bool)
    if len(face) != len(rois):
        raise InputError(f"{name}: {len(face)} face flags for {len(rois)} frames")
    cropped = np.ascontiguousarray(center_crop(rois, crop_size))
    return MouthVideo(cropped, face, frame_reliability(cropped, face, found, mouth_model))


def load_mouth_video(path: str | Path, crop_size: int, landmarks: str = DEFAULT_BACKEND,
                     landmark_weights: str | Path | None = None, device: str = "cpu",
                     mouth_model: MouthModel | None = None) -> MouthVideo:
    """A prepared .npy of mouth crops, or a video file run through `avdiff prepare`'s steps."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() == ".npy":
        try:
            rois = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:  # EOFError: an empty or cut .npy
            reason = "not a plain array: it would need unpickling" if "pickle" in str(error) else str(error)
            raise InputError(f"{path}: cannot read mouth crops ({reason})") from error
        return mouth_video_from_array(rois, crop_size, name=str(path), mouth_model=mouth_model)
    from avdiff.mouth.from_file import mouth_rois_from_file

    rois = mouth_rois_from_file(path, landmarks, landmark_weights, device)
    return mouth_video_from_rois(rois, crop_size, str(path), mouth_model)


def mouth_video_from_rois(rois: MouthROIs, crop_size: int, name: str, mouth_model: MouthModel | None = None) -> MouthVideo:
    """The MouthVideo of a video file's front-end output (`avdiff.mouth.from_file`) at the model's crop size."""
    return mouth_video_from_array(rois.rois, crop_size, rois.face_ok, name=name, found=rois.landmarks.found,
                                  mouth_model=mouth_model)
