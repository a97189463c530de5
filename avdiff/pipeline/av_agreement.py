"""Do the lips agree with what is heard? A per-frame audio-visual agreement score.

The front end's reliability (`avdiff.mouth.reliability`) cannot tell the talker's mouth from
another person's (a dubbed or mismatched video). The sound can: a lip encoder trained with an
envelope predicts how the target's log-mel envelope moves, and where the mouth is the talker's,
the mixture's envelope moves with it, in step. Per video frame, the correlation over a centred
window between the lips' predicted envelope and the mixture's is mapped to [0, 1]: 0 at or below
`unrelated`, 1 at or above `related` (`AgreementSettings`). Both envelopes are detrended first: a
moving average of half a second is taken off each band, leaving the syllables' movements.

Why detrend: every sentence has the same coarse shape (silence, speech, silence), so with only
each window's mean removed another speaker's lips correlate with a mixture too, as much in real
noise (up to 0.45 on tuning clips) as the talker's own lips in babble (0.27-0.51). Detrended, on
the same tuning clips, the talker's own lips correlate 0.15-0.82 (median over frames per clip),
another speaker's at most 0.04 but for one pair of sentences that end in the same words (0.22);
shifting the lips by 6-20 frames gives a null of about 0 (BENCHMARKS.md, "The agreement in step";
`benchmarks/quality/agreement_probe.py`). `detrend_seconds=None` keeps the coarse shape (the earlier
rule, with 0.15 -> 0.25). Whether enhancement and extraction use the agreement unless told:
`avdiff.pipeline.shipped.LIP_AGREEMENT_BY_DEFAULT` (`--lip-agreement` / `--no-lip-agreement`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from avdiff.audio.envelope import log_mel_envelope, per_video_frame
from avdiff.audio.spectrogram import SpectrogramTransform
from avdiff.timegrid import STFT_FRAMES_PER_VIDEO_FRAME, VIDEO_FPS


@dataclass(frozen=True)
class AgreementSettings:
    """How the lips' agreement with the sound is scored."""

    window_seconds: float = 3.0  # the centred window over which the envelopes are correlated
    unrelated: float = 0.05  # correlation at or below which a frame's lips are not trusted (score 0)
    related: float = 0.15  # ... at or above which they are fully trusted (score 1)
    detrend_seconds: float | None = 0.5  # moving average taken off both envelopes first; None: kept

    def __post_init__(self) -> None:
        detrend_ok = self.detrend_seconds is None or self.detrend_seconds * VIDEO_FPS >= 2
        if self.window_seconds * VIDEO_FPS < 3 or not self.unrelated < self.related or not detrend_ok:
            raise ValueError(f"agreement needs a window of at least 3 video frames, unrelated < related and "
                             f"a detrending average of at least 2 frames, got {self}")

    @property
    def window_frames(self) -> int:
        """The window in video frames."""
        return int(round(self.window_seconds * VIDEO_FPS))

    @property
    def detrend_frames(self) -> int:
        """The detrending average's length in video frames, odd so that it is centred."""
        return 2 * int(round(self.detrend_seconds * VIDEO_FPS / 2)) + 1


DEFAULT_AGREEMENT = AgreementSettings()


def mixture_envelope(transform: SpectrogramTransform, waveform: Tensor, bands: int, video_frames: int) -> np.ndarray:
    """(T_v, bands) the log-mel envelope of a (1, N) peak-normalised waveform, per video frame."""
    power = transform.decompress(transform.to_complex(transform.encode(waveform))).abs().square()
    envelope = log_mel_envelope(power, bands, transform.config.sample_rate)
    mask = torch.ones(1, envelope.shape[-1], dtype=torch.bool, device=envelope.device)
    return per_video_frame(envelope, mask, video_frames, STFT_FRAMES_PER_VIDEO_FRAME)[0][0].T.cpu().numpy()


def window_correlation(lips: np.ndarray, heard: np.ndarray, window: int) -> np.ndarray:
    """(T_v,) correlation of two (T_v, bands) envelopes over the window centred on each frame (cut at
    the clip's ends), each band's mean over the window removed; 0 past the shorter one."""
    frames = min(len(lips), len(heard))
    out = np.zeros(len(lips), np.float32)
    a, b = lips[:frames].astype(np.float64), heard[:frames].astype(np.float64)
    sums = np.concatenate([np.zeros((1, 5, a.shape[1])), np.cumsum(np.stack([a, b, a * a, b * b, a * b], 1), 0)])
    t = np.arange(frames)
    lo, hi = np.maximum(0, t - window // 2), np.minimum(frames, t + window // 2 + 1)
    sa, sb, saa, sbb, sab = np.moveaxis(sums[hi] - sums[lo], 1, 0)  # each (frames, bands)
    count = (hi - lo)[:, None]
    covariance = (sab - sa * sb / count).sum(1)
    variance = (saa - sa * sa / count).sum(1) * (sbb - sb * sb / count).sum(1)
    usable = variance > 1e-18
    out[:frames][usable] = covariance[usable] / np.sqrt(variance[usable])
    return out


def detrended(envelope: np.ndarray, frames: int) -> np.ndarray:
    """(T_v, bands) the envelope minus its centred moving average over `frames` (odd; edges held):
    the syllables' movements without the sentence's coarse shape."""
    padded = np.pad(envelope.astype(np.float64), ((frames // 2, frames // 2), (0, 0)), mode="edge")
    sums = np.concatenate([np.zeros((1, envelope.shape[1])), np.cumsum(padded, 0)])
    return envelope - (sums[frames:] - sums[:-frames]) / frames


def agreement_score(correlation: np.ndarray, settings: AgreementSettings = DEFAULT_AGREEMENT) -> np.ndarray:
    """(T_v,) in [0, 1]: 0 at or below `settings.unrelated`, 1 at or above `settings.related`, linear between."""
    span = settings.related - settings.unrelated
    return np.clip((correlation - settings.unrelated) / span, 0.0, 1.0).astype(np.float32)


def agreement_correlation(lips: np.ndarray, heard: np.ndarray,
                          settings: AgreementSettings = DEFAULT_AGREEMENT) -> np.ndarray:
    """(T_v,) the windowed correlation of the lips' (T_v, bands) envelope with the heard one, both
    detrended first unless `settings.detrend_seconds` is None."""
    if settings.detrend_seconds is not None:
        lips, heard = detrended(lips, settings.detrend_frames), detrended(heard, settings.detrend_frames)
    return window_correlation(lips, heard, settings.window_frames)


def lips_agreement(lips: np.ndarray, heard: np.ndarray, settings: AgreementSettings = DEFAULT_AGREEMENT) -> np.ndarray:
    """(T_v,) the agreement score of the lips' (T_v, bands) envelope with the heard one."""
    return agreement_score(agreement_correlation(lips, heard, settings), settings)
