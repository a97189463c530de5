"""Neural networks: the score UNet with its frame-aligned conditioning, the lip encoder, and the
frame-wise speech VAE of the VAE baselines.

The names below load on first use (PEP 562), so the light registry of backbones
(`avdiff.models.backbones`) imports without torch's model libraries.
"""

from __future__ import annotations

from avdiff.lazy import lazy_exports

_EXPORTS = {
    "LipEncoder": "avdiff.models.lip_encoder",
    "ScoreUNet": "avdiff.models.score_unet",
    "SpeechVAE": "avdiff.models.speech_vae",
    "num_stft_frames": "avdiff.models.lip_encoder",
    "upsample_mask": "avdiff.models.lip_encoder",
    "upsample_to_stft": "avdiff.models.lip_encoder",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
