"""Waveform <-> amplitude-compressed complex STFT <-> 2-channel real view, SGMSE+-compatible.

The forward path is `waveform -> stft -> compress -> to_real`, the inverse undoes each step
and restores the exact original length. Everything runs in float32 with autocast disabled:
the compression exponent and the iSTFT overlap-add lose precision in half precision.
"""

from __future__ import annotations

import torch
from torch import Tensor

from avdiff.config.schema import SpectrogramConfig
from avdiff.errors import InputError

# Frames compressed at a time by `encode` (16 s at 125 frames/s): bounds its temporaries on long inputs.
ENCODE_SEGMENT_FRAMES = 2048


def _full_precision(device: torch.device) -> torch.autocast:
    """A context that turns autocast off for `device`'s type (a no-op when it was off)."""
    return torch.autocast(device_type=device.type, enabled=False)


class SpectrogramTransform:
    """Compressed complex STFT of 16 kHz speech, as SGMSE+/UDiffSE compute it by default.

    `c -> beta * |c|**alpha * exp(i*angle(c))`, computed as `beta * c * |c|**(alpha-1)` so
    the phase is kept exactly (no atan2/exp round trip) and silence maps to zero.
    """

    def __init__(self, config: SpectrogramConfig | None = None) -> None:
        self.config = config or SpectrogramConfig()
        self._windows: dict[torch.device, Tensor] = {}

    # ------------------------------------------------------------------ sizes
    @property
    def num_bins(self) -> int:
        """Frequency bins of the one-sided STFT (256 for n_fft 510)."""
        return self.config.n_fft // 2 + 1

    @property
    def frame_rate(self) -> float:
        """STFT frames per second (125 at 16 kHz with hop 128)."""
        return self.config.sample_rate / self.config.hop_length

    def num_frames(self, num_samples: int) -> int:
        """STFT frames produced for a waveform of `num_samples` samples."""
        if self.config.center:
            return 1 + num_samples // self.config.hop_length
        return 1 + (num_samples - self.config.n_fft) // self.config.hop_length

    def num_samples(self, num_frames: int) -> int:
        """Waveform length whose STFT has exactly `num_frames` frames (the shortest such)."""
        if self.config.center:
            return (num_frames - 1) * self.config.hop_length
        return (num_frames - 1) * self.config.hop_length + self.config.n_fft

    def window(self, device: torch.device) -> Tensor:
        """The periodic Hann window on `device`, cached."""
        if device not in self._windows:
            self._windows[device] = torch.hann_window(
                self.config.n_fft, periodic=True, dtype=torch.float32, device=device
            )
        return self._windows[device]

    # ------------------------------------------------------------------ STFT
    def stft(self, waveform: Tensor) -> Tensor:
        """(..., L) real waveform -> (..., F, T) complex64 STFT (not compressed)."""
        if waveform.is_complex() or waveform.dim() < 1:
            raise ValueError(f"expected a real waveform (..., samples), got {tuple(waveform.shape)}")
        shortest = self.config.n_fft // 2 + 1 if self.config.center else self.config.n_fft
        if waveform.shape[-1] < shortest:
            raise InputError(  # a file's fault, reported as such by batch commands
                f"audio too short for the STFT: {waveform.shape[-1]} samples, need at least {shortest} "
                f"({1000 * shortest / self.config.sample_rate:.0f} ms)"
            )
        with _full_precision(waveform.device):
            batch_shape = waveform.shape[:-1]
            flat = waveform.reshape(-1, waveform.shape[-1]).to(torch.float32)
            spec = torch.stft(
                flat,
                n_fft=self.config.n_fft,
                hop_length=self.config.hop_length,
                window=self.window(flat.device),
                center=self.config.center,
                return_complex=True,
            )
            return spec.reshape(*batch_shape, *spec.shape[-2:])

    def istft(self, spec: Tensor, length: int) -> Tensor:
        """(..., F, T) complex STFT -> (..., length) float32 waveform, exactly `length` samples."""
        with _full_precision(spec.device):
            batch_shape = spec.shape[:-2]
            flat = spec.reshape(-1, *spec.shape[-2:]).to(torch.complex64)
            wave = torch.istft(
                flat,
                n_fft=self.config.n_fft,
                hop_length=self.config.hop_length,
                window=self.window(flat.device),
                center=self.config.center,
                length=length,
            )
            return wave.reshape(*batch_shape, length)

    # ------------------------------------------------------------------ compression
    def compress(self, spec: Tensor) -> Tensor:
        """c -> beta * |c|**alpha * c/|c| (complex in, complex out, float32 maths)."""
        alpha, beta = self.config.compression_alpha, self.config.compression_beta
        with _full_precision(spec.device):
            spec = spec.to(torch.complex64)
            if alpha == 1.0:
                return spec * beta
            magnitude = spec.abs()
            gain = torch.where(magnitude > 0, magnitude.clamp_min(1e-30).pow(alpha - 1.0), 0.0)
            return spec * (beta * gain)

    def decompress(self, spec: Tensor) -> Tensor:
        """The inverse of `compress`: c' -> (|c'|/beta)**(1/alpha) * c'/|c'|."""
        alpha, beta = self.config.compression_alpha, self.config.compression_beta
        with _full_precision(spec.device):
            spec = spec.to(torch.complex64)
            if alpha == 1.0:
                return spec / beta
            magnitude = spec.abs()
            safe = magnitude.clamp_min(1e-30)
            gain = torch.where(magnitude > 0, (safe / beta).pow(1.0 / alpha) / safe, 0.0)
            return spec * gain

    # ------------------------------------------------------------------ real view
    @staticmethod
    def to_real(spec: Tensor) -> Tensor:
        """(B, F, T) complex -> (B, 2, F, T) float32 [real, imag] for the network."""
        return torch.view_as_real(spec.to(torch.complex64)).movedim(-1, -3).contiguous()

    @staticmethod
    def to_complex(real: Tensor) -> Tensor:
        """(B, 2, F, T) real view -> (B, F, T) complex64 (the inverse of `to_real`)."""
        if real.shape[-3] != 2:
            raise ValueError(f"expected 2 channels (real, imag) at dim -3, got {tuple(real.shape)}")
        return torch.view_as_complex(real.to(torch.float32).movedim(-3, -1).contiguous())

    # ------------------------------------------------------------------ end to end
    def encode(self, waveform: Tensor, segment_frames: int = ENCODE_SEGMENT_FRAMES) -> Tensor:
        """(B, L) waveform -> (B, 2, F, T) compressed spectrogram, float32. Compression runs on
        `segment_frames` frames at a time into the result, so a long recording's transient memory
        is the STFT and the result, not their several elementwise temporaries (same values)."""
        spec = self.stft(waveform)
        frames = spec.shape[-1]
        if frames <= segment_frames:
            return self.to_real(self.compress(spec))
        out = torch.empty(*spec.shape[:-2], 2, *spec.shape[-2:], dtype=torch.float32, device=spec.device)
        for start in range(0, frames, segment_frames):
            out[..., start:start + segment_frames] = self.to_real(self.compress(spec[..., start:start + segment_frames]))
        return out

    def decode(self, real: Tensor, length: int) -> Tensor:
        """(B, 2, F, T) compressed spectrogram -> (B, length) waveform, float32."""
        return self.istft(self.decompress(self.to_complex(real)), length=length)
