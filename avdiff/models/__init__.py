"""Neural networks: the score UNet with its frame-aligned conditioning, and the lip encoder."""

from avdiff.models.lip_encoder import LipEncoder, num_stft_frames, upsample_mask, upsample_to_stft
from avdiff.models.score_unet import ScoreUNet

__all__ = ["LipEncoder", "ScoreUNet", "num_stft_frames", "upsample_mask", "upsample_to_stft"]
