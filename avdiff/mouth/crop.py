"""Mouth crops: align each frame to the reference face, cut a square around the mouth, resize.

For frame t: A_t = the similarity mapping its (smoothed) stable points onto the reference
face; c_t = the mouth centre (mean of points 48-67) mapped by A_t, smoothed over time; the crop
is the `crop_side` square around c_t in reference pixels, resized to `size` x `size`. The whole
chain is one affine map per frame (frame pixels -> crop pixels, kept in `transforms`), so each
crop pixel is sampled once (bilinear) from the frame's luma, after a Gaussian low-pass when
the crop shrinks the image (no aliasing from high-resolution sources).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates, uniform_filter1d

from avdiff.landmarks.base import MOUTH
from avdiff.media.color import rgb_to_gray
from avdiff.mouth.align import apply, compose, estimate_similarity, invert
from avdiff.mouth.reference import DEFAULT_CROP_SIDE, REFERENCE_STABLE, STABLE_POINTS


@dataclass
class MouthCrops:
    """Grayscale mouth crops and the frame -> crop affine map of each frame."""

    rois: np.ndarray  # uint8 (T, size, size)
    transforms: np.ndarray  # float64 (T, 2, 3): frame pixel (x, y) -> crop pixel (x, y)


def crop_transforms(points: np.ndarray, size: int = 96, crop_side: float = DEFAULT_CROP_SIDE,
                    centre_window: int = 5) -> np.ndarray:
    """Frame -> crop affine maps (T, 2, 3) from filled landmarks (T, 68, 2).

    Pixel centres: crop pixel (u, v) covers [u, u+1) x [v, v+1) and its centre is (u+0.5, v+0.5)
    in continuous coordinates; the same convention as the frame's (x, y).
    """
    to_ref = np.stack([estimate_similarity(p[list(STABLE_POINTS)], REFERENCE_STABLE) for p in points])
    centres = np.stack([apply(m, p[MOUTH]).mean(0) for m, p in zip(to_ref, points)])
    if centre_window > 1 and len(centres) > 1:
        centres = uniform_filter1d(centres, size=centre_window, axis=0, mode="nearest")
    zoom = size / crop_side
    transforms = []
    for m, c in zip(to_ref, centres):
        ref_to_crop = np.array([[zoom, 0.0, -zoom * (c[0] - crop_side / 2)],
                                [0.0, zoom, -zoom * (c[1] - crop_side / 2)]])
        transforms.append(compose(ref_to_crop, m))
    return np.stack(transforms)


def warp_gray(frame_rgb: np.ndarray, transform: np.ndarray, size: int) -> np.ndarray:
    """Sample the (size, size) uint8 luma crop that `transform` (frame -> crop) describes."""
    back = invert(transform)
    uu, vv = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    src = apply(back, np.stack([uu, vv], axis=-1))  # continuous (x, y) of each crop pixel centre
    # Frame pixels per crop pixel; low-pass first when shrinking (skimage's sigma rule).
    step = float(np.sqrt(abs(np.linalg.det(back[:, :2]))))
    sigma = max(0.0, (step - 1.0) / 2.0)
    margin = int(np.ceil(3 * sigma)) + 2
    h, w = frame_rgb.shape[:2]
    x0 = int(np.clip(np.floor(src[..., 0].min()) - margin, 0, w - 1))
    x1 = int(np.clip(np.ceil(src[..., 0].max()) + margin, x0 + 1, w))
    y0 = int(np.clip(np.floor(src[..., 1].min()) - margin, 0, h - 1))
    y1 = int(np.clip(np.ceil(src[..., 1].max()) + margin, y0 + 1, h))
    region = rgb_to_gray(frame_rgb[y0:y1, x0:x1], dtype=np.float32)
    if sigma > 0:
        region = gaussian_filter(region, sigma)
    # Continuous (x, y) -> array index: pixel k's centre is at k + 0.5.
    rows = src[..., 1] - 0.5 - y0
    cols = src[..., 0] - 0.5 - x0
    out = map_coordinates(region, [rows, cols], order=1, mode="nearest")
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def crop_mouths(frames: np.ndarray, points: np.ndarray, size: int = 96,
                crop_side: float = DEFAULT_CROP_SIDE, centre_window: int = 5) -> MouthCrops:
    """Mouth crops (T, size, size) uint8 from RGB frames (T, H, W, 3) and filled landmarks (T, 68, 2)."""
    if frames.shape[0] != points.shape[0]:
        raise ValueError(f"{frames.shape[0]} frames but {points.shape[0]} landmark sets")
    if np.isnan(points).any():
        raise ValueError("landmarks contain NaN: fill gaps first (avdiff.landmarks.track)")
    transforms = crop_transforms(points, size=size, crop_side=crop_side, centre_window=centre_window)
    rois = np.stack([warp_gray(f, m, size) for f, m in zip(frames, transforms)])
    return MouthCrops(rois=rois, transforms=transforms)
