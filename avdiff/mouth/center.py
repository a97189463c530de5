"""The crop a model reads from stored mouth crops: their centre (96 stored -> 88 used, as in lip
reading). A module of its own, without scipy: a job that is handed finished crops (the mouth
prefetch, prepared .npy files) needs only this."""

from __future__ import annotations

import numpy as np


def center_crop(rois: np.ndarray, size: int = 88) -> np.ndarray:
    """The central size x size of (..., H, W) crops (96 stored -> 88 used, as in lip reading)."""
    h, w = rois.shape[-2:]
    if size > h or size > w:
        raise ValueError(f"cannot take a {size} x {size} centre from {h} x {w} crops")
    top, left = (h - size) // 2, (w - size) // 2
    return rois[..., top:top + size, left:left + size]
