"""Clean-up of per-frame landmarks over time: fill short gaps, flag long ones, smooth.

Detectors miss faces in single frames (blur, a hand); lip-reading pipelines (auto_avsr,
AV-HuBERT) interpolate such misses from the neighbours. A long run of misses usually means the
face really is gone (turned away, occluded, off screen), so those frames are flagged
(`face_ok` False: the model then uses its null embedding there) instead of being invented. The
points are still filled there (held or interpolated) so that a crop exists for every frame.
Smoothing is a centred moving average (no lag, unlike auto_avsr's trailing window).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d

from avdiff.landmarks.base import Landmarks


@dataclass
class TrackedLandmarks:
    """Landmarks with every frame filled, and which frames are trustworthy."""

    points: np.ndarray  # float32 (T, 68, 2), no NaN
    face_ok: np.ndarray  # bool (T,)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True in a 1-D bool array."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def fill_gaps(landmarks: Landmarks, max_gap: int = 5) -> TrackedLandmarks:
    """Interpolate missing frames linearly (held at the ends); gaps longer than `max_gap` frames
    are filled the same way but flagged not ok. Raises ValueError if no frame has a face."""
    found = landmarks.found.astype(bool)
    if not found.any():
        raise ValueError("no face in any frame")
    t = np.arange(found.size)
    valid = np.flatnonzero(found)
    flat = landmarks.points.reshape(found.size, -1)
    filled = np.empty_like(flat)
    for k in range(flat.shape[1]):  # np.interp holds the end values outside the valid range
        filled[:, k] = np.interp(t, valid, flat[valid, k])
    face_ok = found.copy()
    for start, stop in _runs(~found):
        if stop - start <= max_gap:
            face_ok[start:stop] = True
    return TrackedLandmarks(points=filled.reshape(landmarks.points.shape).astype(np.float32),
                            face_ok=face_ok)


def smooth(points: np.ndarray, window: int = 5) -> np.ndarray:
    """Centred moving average of (T, K, 2) points over `window` frames (odd; 1 = off)."""
    if window <= 1 or points.shape[0] < 2:
        return points.astype(np.float32, copy=True)
    if window % 2 == 0:
        raise ValueError("smoothing window must be odd so that it is centred")
    return uniform_filter1d(points.astype(np.float64), size=window, axis=0, mode="nearest").astype(np.float32)


def track(landmarks: Landmarks, max_gap: int = 5, window: int = 5) -> TrackedLandmarks:
    """fill_gaps then smooth: what the mouth cropper consumes."""
    filled = fill_gaps(landmarks, max_gap=max_gap)
    return TrackedLandmarks(points=smooth(filled.points, window), face_ok=filled.face_ok)
