"""Mouth-region crops as lip reading does them: align to a reference face, crop, grayscale."""

from avdiff.mouth.crop import MouthCrops, center_crop, crop_mouths, crop_transforms, warp_gray
from avdiff.mouth.extract import MouthROIs, NoFaceError, extract_mouth_rois
from avdiff.mouth.reference import DEFAULT_CROP_SIDE, REFERENCE_STABLE, STABLE_POINTS

__all__ = ["DEFAULT_CROP_SIDE", "MouthCrops", "MouthROIs", "NoFaceError", "REFERENCE_STABLE",
           "STABLE_POINTS", "center_crop", "crop_mouths", "crop_transforms", "extract_mouth_rois",
           "warp_gray"]
