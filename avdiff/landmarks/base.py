"""The landmark interface: RGB frames in, 68 iBUG-style points per frame out.

Both backends (dlib, face-alignment) return the same 68-point layout (jaw 0-16, brows 17-26,
nose 27-35, eyes 36-47, mouth 48-67), one face per frame (the one tracked from frame to frame),
NaN points and found=False where no face was found.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from avdiff.errors import AVDiffError

NUM_LANDMARKS = 68
MOUTH = slice(48, 68)


class LandmarkBackendError(AVDiffError):
    """A landmark backend cannot run at all (package or weights missing): stop, do not reject."""


@dataclass
class Landmarks:
    """Per-frame landmarks of one face: points (T, 68, 2) in pixels (x, y), NaN where missing."""

    points: np.ndarray  # float32 (T, 68, 2)
    found: np.ndarray  # bool (T,)

    def __post_init__(self) -> None:
        if self.points.ndim != 3 or self.points.shape[1:] != (NUM_LANDMARKS, 2):
            raise ValueError(f"points must be (T, 68, 2), got {self.points.shape}")
        if self.found.shape != self.points.shape[:1]:
            raise ValueError("found must have one flag per frame")

    @classmethod
    def concatenate(cls, parts: list["Landmarks"]) -> "Landmarks":
        return cls(points=np.concatenate([p.points for p in parts]),
                   found=np.concatenate([p.found for p in parts]))

    def __len__(self) -> int:
        return int(self.found.size)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def pick_face(boxes: list[np.ndarray], previous: np.ndarray | None) -> int:
    """Index of the face to follow: the best overlap with the last one, else the largest."""
    if previous is not None:
        overlaps = [box_iou(b, previous) for b in boxes]
        best = int(np.argmax(overlaps))
        if overlaps[best] > 0.1:
            return best
    areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
    return int(np.argmax(areas))


class LandmarkDetector(ABC):
    """Finds one face's 68 landmarks in each frame, processing frames `batch_size` at a time."""

    name: str = "base"

    def __init__(self, batch_size: int = 16) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.batch_size = batch_size
        self._previous_box: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the face followed so far (call between videos)."""
        self._previous_box = None

    def detect(self, frames: np.ndarray) -> Landmarks:
        """Landmarks for a (T, H, W, 3) uint8 RGB video, following one face through it."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be (T, H, W, 3) uint8 RGB, got {frames.shape} {frames.dtype}")
        self.reset()
        parts = [self._detect_batch(frames[i:i + self.batch_size])
                 for i in range(0, frames.shape[0], self.batch_size)]
        if not parts:
            return Landmarks(np.zeros((0, NUM_LANDMARKS, 2), np.float32), np.zeros(0, bool))
        return Landmarks.concatenate(parts)

    @abstractmethod
    def _detect_batch(self, frames: np.ndarray) -> Landmarks:
        """Landmarks for consecutive frames; may use and update `self._previous_box`."""
