"""How far to trust the lips at each video frame: a reliability score in [0, 1] from the front end.

Robust audio-visual enhancement has to decide, frame by frame, whether the mouth it is given is
the talker's and is visible (Sadeghi & Alameda-Pineda 2021 switch between an audio-visual and an
audio-only model per frame). The front end knows three things about each frame:

- the face: no face (`face_ok` False) scores 0; a frame whose face was filled in from its
  neighbours (a short detector miss) scores `FILLED_FRAME_SCORE`;
- the mouth crop against the clip's own typical crop: a hand, a microphone, a black patch, heavy
  blur or another person's mouth make a frame's crop unlike the talker's others. Each frame's
  distance to the clip's median crop (mean absolute difference of 16 x 16 thumbnails: skin,
  lips and teeth in their places) is turned into a robust z-score over the frames that have a
  face; the score falls linearly from 1 at `TYPICAL_Z` to 0 at `ATYPICAL_Z`.

The median is the talker's typical mouth as long as at least half of the frames show it. Given
the model's `MouthModel` (a Gaussian of the crops its lip encoder was trained on), frames that are
no mouth at all (a hand or a patch over it, on any share of the clip) score low by that model, and
only the frames it takes for mouths make the clip's median; a clip that is mostly someone else's
mouth still cannot be told apart from its crops alone (the agreement with the sound can:
`avdiff.pipeline.av_agreement`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from avdiff.mouth.mouth_model import MouthModel

FILLED_FRAME_SCORE = 0.5
TYPICAL_Z = 6.0
ATYPICAL_Z = 12.0
THUMBNAIL = 16
# Frames scoring below this are masked in the prior's condition (the null embedding there), as
# frames without a face are; above it the lips condition the prior and their evidence is weighted.
USABLE_SCORE = 0.5


def frame_reliability(rois: np.ndarray, face_ok: np.ndarray, found: np.ndarray | None = None,
                      mouth_model: MouthModel | None = None) -> np.ndarray:
    """(T,) float32 scores in [0, 1] of mouth crops `rois` (T, H, W); `found` (T,) says which frames'
    faces were detected rather than filled in (None: all that have `face_ok`); `mouth_model`, the
    model's own crops' Gaussian (None: the clip-relative test alone)."""
    face_ok = np.asarray(face_ok, dtype=bool)
    score = face_ok.astype(np.float32)
    if found is not None:
        score[face_ok & ~np.asarray(found, dtype=bool)] = FILLED_FRAME_SCORE
    if face_ok.sum() < 3:
        return score
    typical = None if mouth_model is None else mouth_model.typical_frames(rois, face_ok)
    reference = face_ok if typical is None else face_ok & (typical >= USABLE_SCORE)
    if reference.sum() >= 3:
        score *= crop_typicality(rois, reference)
    return score if typical is None else score * typical


def crop_typicality(rois: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(T,) in [0, 1]: 1 for crops like the median crop of the `reference` frames (those with a
    face, or those the mouth model takes for mouths), falling to 0 for outliers (see the module
    docstring)."""
    thumbs = thumbnails(rois)
    median = np.median(thumbs[reference], axis=0)
    distance = np.abs(thumbs - median).mean(axis=(1, 2))
    centre = np.median(distance[reference])
    spread = 1.4826 * np.median(np.abs(distance[reference] - centre)) + 1e-3
    z = (distance - centre) / spread
    return np.clip((ATYPICAL_Z - z) / (ATYPICAL_Z - TYPICAL_Z), 0.0, 1.0).astype(np.float32)


def thumbnails(rois: np.ndarray) -> np.ndarray:
    """(T, 16, 16) block means of each crop, in [0, 1]."""
    frames, height, width = rois.shape
    step_h, step_w = height // THUMBNAIL, width // THUMBNAIL
    cut = rois[:, : step_h * THUMBNAIL, : step_w * THUMBNAIL].astype(np.float32)
    return cut.reshape(frames, THUMBNAIL, step_h, THUMBNAIL, step_w).mean(axis=(2, 4)) / 255.0
