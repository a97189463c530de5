"""What the lips say about the target of an enhancement, for posterior methods that use it.

A lip encoder trained with an envelope (`envelope_bands`, `avdiff.audio.envelope`) predicts the
target's log-mel envelope per frame; here it becomes the target's power per bin of y's grid, in
the compressed domain the posterior works in, with the frames' reliability beside it.
"""

from __future__ import annotations

from torch import Tensor

from avdiff.audio.envelope import envelope_bin_power
from avdiff.audio.spectrogram import SpectrogramTransform
from avdiff.posterior import LipEvidence


def lip_evidence(cond: Tensor | None, mask: Tensor | None, envelope_bands: int,
                 transform: SpectrogramTransform, num_bins: int, trust: Tensor | None = None) -> LipEvidence | None:
    """`LipEvidence` of chunks' condition (B, D, T) and face mask (B, T) (with the lips' reliability
    `trust` (B, T) where known), or None without lips, without an envelope in the condition, or with
    no frame that has a face."""
    if cond is None or mask is None or envelope_bands == 0 or not bool(mask.any()):
        return None
    config = transform.config
    linear = envelope_bin_power(cond[:, :envelope_bands].float(), num_bins, config.sample_rate)
    compressed = config.compression_beta**2 * linear.pow(config.compression_alpha)  # |beta c^alpha|^2
    reliability = mask.float() if trust is None else trust.float() * mask
    return LipEvidence(speech_power=compressed, reliability=reliability)
