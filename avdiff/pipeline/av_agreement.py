"""Do the lips agree with what is heard? A per-frame audio-visual agreement score.

The front end's reliability (`avdiff.mouth.reliability`) cannot tell the talker's mouth from
another person's (a dubbed or mismatched video). The sound can: a lip encoder trained with an
envelope predicts how the target's log-mel envelope moves, and where the mouth is the talker's,
the mixture's envelope moves with it. Per video frame, the correlation over a centred window of
`AGREEMENT_FRAMES` frames between the lips' predicted envelope and the mixture's, each band's mean over the
window removed (the movements, not the spectral shape that every voice shares), is mapped to
[0, 1]: 0 at or below `UNRELATED`, 1 at or above `RELATED`.

Opt-in (`lip_agreement=True`, `--lip-agreement`): in babble it also distrusts the talker's own
lips often enough to cut the lips' gain about in half. Chosen on the 6 tuning clips of the held-out corpus (BENCHMARKS.md, "Unreliable lips"): over 1 s
windows the talker's own lips correlate 0.6 (median; 10th percentile 0.4) with a mixture at 0 or
-5 dB in real noise, and 0.35 (10th percentile 0.1) in babble; another speaker's lips 0.0-0.1
(90th percentile 0.25-0.45).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from avdiff.audio.envelope import log_mel_envelope, per_video_frame
from avdiff.audio.spectrogram import SpectrogramTransform
from avdiff.timegrid import STFT_FRAMES_PER_VIDEO_FRAME, VIDEO_FPS

AGREEMENT_FRAMES = VIDEO_FPS  # video frames: 1 s
UNRELATED = 0.1
RELATED = 0.35


def mixture_envelope(transform: SpectrogramTransform, waveform: Tensor, bands: int, video_frames: int) -> np.ndarray:
    """(T_v, bands) the log-mel envelope of a (1, N) peak-normalised waveform, per video frame."""
    power = transform.decompress(transform.to_complex(transform.encode(waveform))).abs().square()
    envelope = log_mel_envelope(power, bands, transform.config.sample_rate)
    mask = torch.ones(1, envelope.shape[-1], dtype=torch.bool, device=envelope.device)
    return per_video_frame(envelope, mask, video_frames, STFT_FRAMES_PER_VIDEO_FRAME)[0][0].T.cpu().numpy()


def window_correlation(lips: np.ndarray, heard: np.ndarray, window: int = AGREEMENT_FRAMES) -> np.ndarray:
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


def agreement_score(correlation: np.ndarray) -> np.ndarray:
    """(T_v,) in [0, 1]: 0 at or below UNRELATED, 1 at or above RELATED, linear between."""
    return np.clip((correlation - UNRELATED) / (RELATED - UNRELATED), 0.0, 1.0).astype(np.float32)
