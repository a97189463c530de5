"""Settings of a `prepare` run (one object, so worker processes get exactly the same ones)."""

from __future__ import annotations

from dataclasses import dataclass

from avdiff.landmarks import DEFAULT_BACKEND


@dataclass(frozen=True)
class PrepareSettings:
    """How to turn a video into a manifest item; the defaults follow lip-reading practice."""

    landmarks: str = DEFAULT_BACKEND  # auto, face-alignment or dlib (avdiff.landmarks.auto)
    landmark_weights: str | None = None  # face-alignment weights folder / dlib predictor file
    device: str = "cpu"
    roi_size: int = 96  # stored crop side in pixels (88 x 88 centre used in training)
    crop_side: float = 96.0  # crop side in reference-face pixels (= mm); see avdiff.mouth.reference
    max_gap: int = 5  # missing-face runs up to this many frames are interpolated, longer ones flagged
    smooth_window: int = 5  # frames in the centred landmark smoothing window
    min_duration: float = 0.5  # seconds; shorter clips are rejected as too short
    max_duration: float = 120.0  # seconds; longer clips are rejected (memory)
    min_face_fraction: float = 0.5  # reject clips with a usable face in fewer frames than this
    min_audio_coverage: float = 0.9  # reject clips whose audio covers less of the video than this
    max_side: int = 640  # frames are shrunk at decode so their longer side is at most this
    max_utterance_seconds: float = 20.0  # audio-only recordings longer than this are cut at pauses

    def __post_init__(self) -> None:
        if self.roi_size < 8 or self.smooth_window < 1 or self.smooth_window % 2 == 0:
            raise ValueError("roi_size must be >= 8 and smooth_window a positive odd number")
        if not 0.0 <= self.min_face_fraction <= 1.0 or not 0.0 <= self.min_audio_coverage <= 1.0:
            raise ValueError("min_face_fraction and min_audio_coverage are fractions in [0, 1]")
        if self.min_duration < 0 or self.max_duration <= self.min_duration:
            raise ValueError("need 0 <= min_duration < max_duration")
        if self.max_utterance_seconds <= 2 * max(self.min_duration, 0.5):
            raise ValueError("max_utterance_seconds must exceed twice min_duration (and 1 s)")
