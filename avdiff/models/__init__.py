"""Neural networks: the score UNet and its conditioning (the lip encoder lands with issue 3)."""

from avdiff.models.score_unet import ScoreUNet

__all__ = ["ScoreUNet"]
