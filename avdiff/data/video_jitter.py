"""Per-clip geometric and photometric jitter of mouth crops: training augmentation for new faces.

The lips' error on speakers never seen is about twice that on the training speakers
(BENCHMARKS.md, "Two-stage video-to-speech"): the lip encoder learns the training faces. Stored
crops are already aligned and exactly `crop_size`, so without jitter every training clip shows
its mouth at one scale, place, angle and exposure. Each clip here gets one random similarity
transform (scale 1 +- g, shift +- g half-sides, rotation +- g * ROTATION_DEGREES_PER_UNIT degrees,
replicated borders) and one contrast / brightness change (contrast 1 +- p about the clip's mean,
brightness +- p * BRIGHTNESS_LEVELS_PER_UNIT grey levels), the same on all of its frames, so the
motion the lips read is untouched.
"""

from __future__ import annotations

import math

import numpy as np
import torch

ROTATION_DEGREES_PER_UNIT = 50.0  # g = 0.1: up to +- 5 degrees
BRIGHTNESS_LEVELS_PER_UNIT = 255 / 2  # half the grey range: p = 0.15 gives up to +- 19 grey levels


def jitter_geometry(video: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """(T, H, W) uint8 -> the same clip under one random similarity transform of size `amount`."""
    if amount <= 0 or video.size == 0:
        return video
    scale = 1.0 + rng.uniform(-amount, amount)
    angle = math.radians(rng.uniform(-amount, amount) * ROTATION_DEGREES_PER_UNIT)
    shift_x, shift_y = rng.uniform(-amount, amount, size=2)
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale  # output -> input sampling coordinates
    theta = torch.tensor([[cos, -sin, shift_x], [sin, cos, shift_y]], dtype=torch.float32).unsqueeze(0)
    frames = torch.from_numpy(np.ascontiguousarray(video)).float().unsqueeze(1)  # (T, 1, H, W)
    grid = torch.nn.functional.affine_grid(theta.expand(len(frames), -1, -1), list(frames.shape), align_corners=False)
    moved = torch.nn.functional.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return moved[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()


def jitter_exposure(video: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """(T, H, W) uint8 -> the same clip with one random contrast and brightness change of size `amount`."""
    if amount <= 0 or video.size == 0:
        return video
    contrast = 1.0 + rng.uniform(-amount, amount)
    brightness = rng.uniform(-amount, amount) * BRIGHTNESS_LEVELS_PER_UNIT
    mean = float(video.mean())
    changed = (video.astype(np.float32) - mean) * contrast + mean + brightness
    return np.clip(np.rint(changed), 0, 255).astype(np.uint8)
