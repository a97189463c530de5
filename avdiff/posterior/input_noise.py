"""What the input's own noise says before and after a prior is asked (issue 26).

A posterior pass works on compressed spectrograms c = beta |X|^alpha e^{i angle X}. This module
links it to the linear STFT the noise lives in:
- `InputNoise.of(y, compression)`: the noise power tracked on y alone
  (`avdiff.posterior.noise_tracking`), as the compressed domain's complex variance V (a bin of
  noise alone with linear power N has E|c|^2 = beta^2 Gamma(1 + alpha) N^alpha), the input's SNR
  (from the tracker, for reports and the start level) and its frame-level SNR (the frames' total
  power against the mean of the quietest tenth of frames: unbiased at high SNR, where the tracker
  takes weak speech for noise);
- `wiener(y, speech_power, variance)`: the Wiener filter of y with the posterior's speech power
  and the noise's variance (the VAE methods' output is one too), optionally never below what
  magnitude spectral subtraction of the same noise keeps;
- `input_share(snr_db, low, high)`: how much of the input to give back where the SNR (`InputNoise.mix_snr_db`)
  says there is little to do (0 at or below `low` dB, 1 at or above `high`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from avdiff.audio.chunks import ENHANCEMENT_OVERLAP_FRAMES, join_chunks, plan_chunks
from avdiff.audio.spectrogram import SpectrogramTransform
from avdiff.config.schema import SpectrogramConfig
from avdiff.posterior.noise_tracking import FLOOR, estimate_snr_db, quiet_start, track_noise_power


@dataclass(frozen=True)
class Compression:
    """The amplitude compression of the model's spectrograms (`spectrogram.compression_*`), on the
    real views posterior methods hold; the maths is `SpectrogramTransform`'s."""

    alpha: float
    beta: float

    @classmethod
    def default(cls) -> "Compression":
        """The spectrogram config's defaults (what every shipped model uses)."""
        config = SpectrogramConfig()
        return cls(config.compression_alpha, config.compression_beta)

    @cached_property
    def transform(self) -> SpectrogramTransform:
        return SpectrogramTransform(SpectrogramConfig(compression_alpha=self.alpha, compression_beta=self.beta))

    def compressed(self, linear: Tensor) -> Tensor:
        """(B, 2, F, T) linear real view -> compressed: beta |X|^alpha e^{i angle X}."""
        return self.transform.to_real(self.transform.compress(self.transform.to_complex(linear)))

    def linear(self, spec: Tensor) -> Tensor:
        """(B, 2, F, T) compressed real view -> linear: (|c| / beta)^(1/alpha) e^{i angle c}."""
        return self.transform.to_real(self.transform.decompress(self.transform.to_complex(spec)))

    def linear_power(self, spec: Tensor) -> Tensor:
        """(B, 2, F, T) compressed real view -> (B, F, T) linear power |X|^2."""
        return self.transform.decompress(self.transform.to_complex(spec)).abs().square()

    def noise_variance(self, linear_noise: Tensor) -> Tensor:
        """E|c|^2 in the compressed domain of bins of noise alone with linear power `linear_noise`."""
        return self.beta**2 * math.gamma(1 + self.alpha) * linear_noise.pow(self.alpha)


@dataclass
class InputNoise:
    """The noise of each item of y (B items): `variance` (B, F, T) in y's compressed domain,
    `snr_db` (B,) from the tracker, `frame_snr_db` (B,) from the quietest frames."""

    variance: Tensor
    snr_db: Tensor
    frame_snr_db: Tensor

    @classmethod
    def of(cls, y: Tensor, compression: Compression) -> "InputNoise":
        power = compression.linear_power(y)
        noise = track_noise_power(power)
        return cls(compression.noise_variance(noise).clamp_min(FLOOR), estimate_snr_db(power, noise),
                   frame_snr_db(power))

    def mix_snr_db(self, by: str, tracker_bias_db: float, tracker_trusted_below_db: float = math.inf) -> Tensor:
        """(B,) the SNR an input mix follows: the frame-level SNR (`by` "frame"), or ("frame_or_tracker"),
        where the tracker reads at most `tracker_trusted_below_db`, the lower of it and the tracker's
        plus `tracker_bias_db`. The two err on opposite sides: the frame-level SNR reads 8-16 dB high in
        bursty or low-frequency noise, the tracker's about 8 dB low at 20 dB (12 dB on some clean
        recordings) and within about 2 dB at low SNR in stationary noise."""
        if by == "frame":
            return self.frame_snr_db
        if by == "frame_or_tracker":
            lower = torch.minimum(self.frame_snr_db, self.snr_db + tracker_bias_db)
            return torch.where(self.snr_db <= tracker_trusted_below_db, lower, self.frame_snr_db)
        raise ValueError(f"unknown input mix SNR {by!r}; known: frame, frame_or_tracker")

    def level(self) -> Tensor:
        """(B,) the noise's std per real component in compressed units, sqrt(mean V / 2)."""
        return (self.variance.flatten(1).mean(1) / 2).sqrt()


def frame_snr_db(power: Tensor, quantile: float = 0.1) -> Tensor:
    """(B,) 10 log10((mean E - E_quiet) / E_quiet), E the frames' total power (B, F, T) -> (B, T) and
    E_quiet the mean of the quietest `quantile` of frames (the pauses between words)."""
    energy = power.sum(1)
    count = max(1, int(math.ceil(quantile * energy.shape[-1])))
    quiet = energy.sort(dim=-1).values[..., :count].mean(-1).clamp_min(FLOOR)
    return 10 * torch.log10((energy.mean(-1) - quiet).clamp_min(FLOOR) / quiet)


def wiener(y: Tensor, speech_power: Tensor, variance: Tensor, keep_subtraction: bool = False) -> Tensor:
    """y (B, 2, F, T) times the gain S / (S + V) per bin (S, V: (B, F, T) powers in y's domain);
    `keep_subtraction`: the gain is at least magnitude subtraction's sqrt(max(1 - V / |y|^2, 0))."""
    gain = speech_power / (speech_power + variance).clamp_min(FLOOR)
    if keep_subtraction:
        observed = y.to(torch.float32).square().sum(1)
        gain = torch.maximum(gain, (1 - variance / observed.clamp_min(FLOOR)).clamp_min(0).sqrt())
    return y * gain.unsqueeze(1)


def input_share(snr_db: Tensor, low: float, high: float) -> Tensor:
    """(B,) the share of the input to mix back: 0 at or below `low` dB, 1 at or above `high`, linear between."""
    return ((snr_db - low) / max(high - low, 1e-6)).clamp(0.0, 1.0)


def windowed(y: Tensor, window: int, decide: Callable[[Tensor], Tensor]) -> Tensor:
    """(B, T) per frame: `decide` (N, 2, F, t) -> (N,), item by item, on windows of `window` frames
    of y laid out as enhancement chunks of that length (the last zero-padded as they are) and
    cross-faded as they are. The windows go to `decide` as one batch (they are of one length).
    Each item's result stays within its windows' values, so windows that agree give exactly their
    value (float32 cross-fade weights sum to 1 only within rounding)."""
    frames, items = y.shape[-1], y.shape[0]
    chunks = plan_chunks(frames, window, ENHANCEMENT_OVERLAP_FRAMES)
    padded = torch.nn.functional.pad(y, (0, chunks[-1][1] - frames))
    decided = decide(torch.cat([padded[..., start:end] for start, end in chunks])).view(len(chunks), items)
    pieces = (decided[index][:, None].expand(-1, end - start) for index, (start, end) in enumerate(chunks))
    joined = join_chunks(pieces, chunks, frames)
    return torch.minimum(torch.maximum(joined, decided.min(0).values[:, None]), decided.max(0).values[:, None])


def mix_in_input(y: Tensor, estimate: Tensor, share: Tensor, compression: Compression) -> Tensor:
    """share y + (1 - share) estimate, mixed in the linear STFT (as waveforms mix), recompressed;
    `share` is one number per item (B,) or one per item and frame (B, T)."""
    share = share.to(y)
    share = share.view(share.shape[0], 1, 1, -1)
    mixed = share * compression.linear(y) + (1 - share) * compression.linear(estimate)
    return compression.compressed(mixed)


__all__ = ["Compression", "InputNoise", "frame_snr_db", "input_share", "quiet_start", "wiener", "windowed"]
