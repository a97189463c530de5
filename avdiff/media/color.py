"""RGB to grayscale with the ITU-R BT.601 luma weights (what OpenCV's RGB2GRAY uses)."""

from __future__ import annotations

import numpy as np

_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def rgb_to_gray(rgb: np.ndarray, dtype: type = np.uint8) -> np.ndarray:
    """(..., 3) RGB uint8 -> (...) luma; uint8 (rounded) by default, or float32 in 0..255."""
    gray = rgb.astype(np.float32) @ _WEIGHTS
    if dtype == np.uint8:
        return np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    return gray.astype(dtype)
