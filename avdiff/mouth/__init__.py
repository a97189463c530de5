"""Mouth-region crops as lip reading does them: align to a reference face, crop, grayscale.

The names below load on first use (PEP 562): `avdiff.mouth.reliability` and `.reference` import
without scipy, which the crops' warping needs (an audio-only job never loads it)."""

from __future__ import annotations

from avdiff.lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_CROP_SIDE": "avdiff.mouth.reference",
    "MouthCrops": "avdiff.mouth.crop",
    "MouthROIs": "avdiff.mouth.extract",
    "NoFaceError": "avdiff.mouth.extract",
    "REFERENCE_STABLE": "avdiff.mouth.reference",
    "STABLE_POINTS": "avdiff.mouth.reference",
    "center_crop": "avdiff.mouth.center",
    "crop_mouths": "avdiff.mouth.crop",
    "crop_transforms": "avdiff.mouth.crop",
    "extract_mouth_rois": "avdiff.mouth.extract",
    "warp_gray": "avdiff.mouth.crop",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
