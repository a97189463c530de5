"""Do the lips agree with what is heard? A per-frame audio-visual agreement score.

The front end's reliability (`avdiff.mouth.reliability`) cannot tell the talker's mouth from
another person's (a dubbed or mismatched video). The sound can: a lip encoder trained with an
envelope predicts how the target's log-mel envelope moves, and where the mouth is the talker's,
the mixture's envelope moves with it. Per video frame, the correlation over a centred window
between the lips' predicted envelope and the mixture's, each band's mean over the window removed
(the movements, not the spectral shape that every voice shares), is mapped to [0, 1]: 0 at or
below `unrelated`, 1 at or above `related` (`AgreementSettings`).

The defaults (`DEFAULT_AGREEMENT`) suit the shipped two-stage lips (`v2s`, `v2s-fast`, `av-vae`),
chosen on tuning clips only (BENCHMARKS.md, "The agreement's thresholds for the two-stage lips"):
in babble at 0 / -5 dB the talker's own lips correlate 0.38-0.41 / 0.30-0.32 (median) with the
mixture, another speaker's 0.08-0.18. A window of a few seconds separates them better than 1 s,
at the cost of placing a mismatch only to within about half a window. The joint model's lips
were scored with 1 s and 0.10 -> 0.35. Whether enhancement and extraction use it unless told:
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
    unrelated: float = 0.15  # correlation at or below which a frame's lips are not trusted (score 0)
    related: float = 0.25  # ... at or above which they are fully trusted (score 1)

    def __post_init__(self) -> None:
        if self.window_seconds * VIDEO_FPS < 3 or not self.unrelated < self.related:
            raise ValueError(f"agreement needs a window of at least 3 video frames and unrelated < related, got {self}")

    @property
    def window_frames(self) -> int:
        """The window in video frames."""
        return int(round(self.window_seconds * VIDEO_FPS))


DEFAULT_AGREEMENT = AgreementSettings()


def mixture_envelope(transform: SpectrogramTransform, waveform: Tensor, bands: int, video_frames: int) -> np.ndarray:
    """(T_v, bands) the log-mel envelope of a (1, N) peak-normalised waveform, per video frame."""
    power = transform.decompress(transform.to_complex(transform.encode(waveform))).abs().square()
    envelope = log_mel_envelope(power, bands, transform.config.sample_rate)
    mask = torch.ones(1, envelope.shape[-1], dtype=torch.bool, device=envelope.device)
    return per_video_frame(envelope, mask, video_frames, STFT_FRAMES_PER_VIDEO_FRAME)[0][0].T.cpu().numpy()


def window_correlation(lips: np.ndarray, heard: np.ndarray, window: int) -> np.ndarray:
    """(T_v,) correlation of two (T_v, bands) envelopes over the window centred on each frame (cut at
    the clip's ends), each band's mean over the window removed."""
    frames = min(len(lips), len(heard))
    out = np.zeros(len(lips), np.float32)
    half = window // 2
    for t in range(frames):
        lo, hi = max(0, t - half), min(frames, t + half + 1)
        a = lips[lo:hi] - lips[lo:hi].mean(0)
        b = heard[lo:hi] - heard[lo:hi].mean(0)
        norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
        out[t] = float((a * b).sum()) / norm if norm > 1e-9 else 0.0
    return out


def agreement_score(correlation: np.ndarray, settings: AgreementSettings = DEFAULT_AGREEMENT) -> np.ndarray:
    """(T_v,) in [0, 1]: 0 at or below `settings.unrelated`, 1 at or above `settings.related`, linear between."""
    span = settings.related - settings.unrelated
    return np.clip((correlation - settings.unrelated) / span, 0.0, 1.0).astype(np.float32)


def lips_agreement(lips: np.ndarray, heard: np.ndarray, settings: AgreementSettings = DEFAULT_AGREEMENT) -> np.ndarray:
    """(T_v,) the agreement score of the lips' (T_v, bands) envelope with the heard one."""
    return agreement_score(window_correlation(lips, heard, settings.window_frames), settings)
