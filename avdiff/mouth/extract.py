"""From a video's frames to its mouth-ROI sequence: landmarks, tracking, crops, face_ok mask."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avdiff.errors import InputError
from avdiff.landmarks.base import LandmarkDetector, Landmarks
from avdiff.landmarks.tracking import track
from avdiff.mouth.crop import crop_mouths
from avdiff.mouth.reference import DEFAULT_CROP_SIDE


class NoFaceError(InputError):
    """No face was found in any frame of a video."""


@dataclass
class MouthROIs:
    """What `extract_mouth_rois` returns."""

    rois: np.ndarray  # uint8 (T, size, size)
    face_ok: np.ndarray  # bool (T,): face found, or a short gap filled from neighbours
    landmarks: Landmarks  # raw detections (NaN where none)
    points: np.ndarray  # float32 (T, 68, 2): filled and smoothed landmarks used for the crops
    transforms: np.ndarray  # (T, 2, 3): frame pixel -> crop pixel


def extract_mouth_rois(frames: np.ndarray, detector: LandmarkDetector, size: int = 96,
                       crop_side: float = DEFAULT_CROP_SIDE, max_gap: int = 5,
                       smooth_window: int = 5, name: str = "video") -> MouthROIs:
    """Mouth ROIs for RGB frames (T, H, W, 3); raises NoFaceError if no frame has a face."""
    landmarks = detector.detect(frames)
    if not landmarks.found.any():
        raise NoFaceError(f"{name}: no face found in any of its {len(landmarks)} frames")
    tracked = track(landmarks, max_gap=max_gap, window=smooth_window)
    crops = crop_mouths(frames, tracked.points, size=size, crop_side=crop_side, centre_window=smooth_window)
    return MouthROIs(rois=crops.rois, face_ok=tracked.face_ok, landmarks=landmarks,
                     points=tracked.points, transforms=crops.transforms)
