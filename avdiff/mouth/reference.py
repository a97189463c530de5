"""The reference face that every frame is aligned to before the mouth is cropped.

Lip-reading preprocessing (auto_avsr, AV-HuBERT) aligns each frame to a mean face on five
stable points (nose base 33, eye corners 36, 39, 42, 45) with a similarity transform, then
crops a fixed-size square around the mouth in that reference frame, so head size and roll are
normalised while the mouth's own motion is kept. Their mean face ships as a binary file we do
not copy; ours is built from adult anthropometric averages (Farkas' norms, in mm): outer eye
corners 90 mm apart, inner corners 32 mm apart, nose base (subnasale) 44 mm below the eye
line, mouth (stomion) 22 mm below that. One reference pixel is one millimetre, so the default
96-pixel crop is a 96 mm square around the mouth: lips, the base of the nose and the chin.
"""

from __future__ import annotations

import numpy as np

STABLE_POINTS: tuple[int, ...] = (33, 36, 39, 42, 45)

# (x, y) in reference pixels (= mm) on a 256 x 256 canvas, eyes' midpoint at (128, 100).
# The subject's right eye (points 36-39) is on the image's left.
REFERENCE_STABLE = np.array([
    [128.0, 144.0],  # 33 nose base
    [83.0, 100.0],   # 36 right eye, outer corner
    [112.0, 100.0],  # 39 right eye, inner corner
    [144.0, 100.0],  # 42 left eye, inner corner
    [173.0, 100.0],  # 45 left eye, outer corner
], dtype=np.float64)

REFERENCE_MOUTH_CENTRE = np.array([128.0, 166.0])
REFERENCE_MOUTH_WIDTH = 50.0  # mm, corner to corner
DEFAULT_CROP_SIDE = 96.0  # reference pixels (mm)
