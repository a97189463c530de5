"""Log-mel spectral envelopes: what the lips are trained to predict and the score network draws.

Video-to-speech needs the lip embeddings to say where the speech energy is. Learned only
through the denoising loss, a small lip encoder on a CPU budget never gets there (BENCHMARKS.md,
"Why the lips were ignored"). So the first `envelope_bands` channels of the lip embedding are
trained directly (an auxiliary loss) to be the speech's log-mel envelope at each video frame,
and the score UNet maps those channels back onto its linear frequency bins as an input image
(`band_to_bin_matrix`): a frame-aligned, frequency-aligned picture of the speech to draw over.

Bands are torchaudio's triangular HTK mel filters over 0 .. sample_rate / 2. Values are
ln(power + ENVELOPE_FLOOR) of the uncompressed STFT, shifted and scaled by ENVELOPE_OFFSET and
ENVELOPE_SCALE into roughly [-1, 1] for peak-normalised speech.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torchaudio
from torch import Tensor

# ln-power of peak-normalised synthetic speech runs from the floor (-9.2) to about 8.5, mean -2.6:
ENVELOPE_FLOOR = 1e-4  # power floor before the log (silence reads as ln 1e-4 = -9.2)
ENVELOPE_OFFSET = 1.0  # ln-power shift: centres the floor-to-peak range
ENVELOPE_SCALE = 8.0  # ln-power scale: that range into about [-1, 1.2] (std about 0.55)


def _mel(frequency: Tensor | float) -> Tensor:
    """HTK mel of a frequency in Hz (the scale of torchaudio's `melscale_fbanks(mel_scale='htk')`)."""
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(frequency, dtype=torch.float64) / 700.0)


def mel_filterbank(num_bins: int, bands: int, sample_rate: int) -> Tensor:
    """(num_bins, bands) triangular mel filters over the one-sided STFT bins 0 .. sample_rate / 2."""
    return torchaudio.functional.melscale_fbanks(num_bins, 0.0, sample_rate / 2, bands, sample_rate,
                                                 norm=None, mel_scale="htk")


def log_mel_envelope(power: Tensor, bands: int, sample_rate: int) -> Tensor:
    """Power spectrogram (B, F, T) -> normalised log-mel envelope (B, bands, T), float32."""
    filters = mel_filterbank(power.shape[-2], bands, sample_rate).to(power.device)
    mel = torch.einsum("fe,bft->bet", filters, power.float())
    return (torch.log(mel + ENVELOPE_FLOOR) + ENVELOPE_OFFSET) / ENVELOPE_SCALE


def per_video_frame(envelope: Tensor, frame_mask: Tensor, video_frames: int, stft_per_video_frame: int
                    ) -> tuple[Tensor, Tensor]:
    """(B, E, T) envelope on the STFT grid -> (B, E, T_v) means over each video frame's STFT frames,
    and (B, T_v) the share of those frames inside the clip (0 for padding).

    Video frame j covers STFT frames 5 j .. 5 j + 4 (`avdiff.models.lip_encoder`); a crop's last
    video frame may cover fewer than 5 of them, and frames outside `frame_mask` count for nothing.
    """
    batch, bands, frames = envelope.shape
    width = video_frames * stft_per_video_frame
    weight = frame_mask.to(envelope.dtype)[:, :width]
    values = envelope[..., :width] * weight[:, None, :]
    if frames < width:
        pad = width - frames
        values = torch.nn.functional.pad(values, (0, pad))
        weight = torch.nn.functional.pad(weight, (0, pad))
    counts = weight.view(batch, video_frames, stft_per_video_frame).sum(-1)
    sums = values.view(batch, bands, video_frames, stft_per_video_frame).sum(-1)
    return sums / counts.clamp_min(1.0)[:, None, :], counts / stft_per_video_frame


def band_centres_mel(bands: int, sample_rate: int, device: torch.device | None = None) -> Tensor:
    """(bands,) float64 HTK mel of each band's centre: the e-th interior point of `bands + 2`
    mel-spaced points over 0 .. sample_rate / 2, the peak of its triangular filter."""
    top = 2595.0 * math.log10(1.0 + sample_rate / 2 / 700.0)  # `_mel` of the Nyquist frequency, as a number
    return torch.linspace(0.0, top, bands + 2, dtype=torch.float64, device=device)[1:-1]


def band_centres_hz(bands: int, sample_rate: int) -> Tensor:
    """(bands,) each band's centre frequency in Hz (`band_centres_mel` off the mel scale)."""
    return (700.0 * (10.0 ** (band_centres_mel(bands, sample_rate) / 2595.0) - 1.0)).float()


@lru_cache(maxsize=16)
def band_to_bin_matrix(num_bins: int, bands: int, sample_rate: int) -> Tensor:
    """`band_to_bin_weights`, computed once per shape (a network draws the envelope at every
    call): callers must not modify it."""
    return band_to_bin_weights(num_bins, bands, sample_rate)


def band_to_bin_weights(num_bins: int, bands: int, sample_rate: int, device: torch.device | None = None) -> Tensor:
    """(num_bins, bands) weights that linearly interpolate band values to each STFT bin, made on
    `device` (a compiled network makes them inside its graph, with no host tensor in it).

    Band e is centred at the e-th interior point of `bands + 2` mel-spaced points over
    0 .. sample_rate / 2 (the peak of its triangle); a bin between two centres mixes those two
    bands by its mel distance, and bins below the first or above the last centre take the
    nearest band. Each row sums to 1.
    """
    centres = band_centres_mel(bands, sample_rate, device)
    bins = _mel(torch.linspace(0.0, sample_rate / 2, num_bins, dtype=torch.float64, device=device))
    position = ((bins - centres[0]) / (centres[1] - centres[0]) if bands > 1 else bins * 0).clamp(0, bands - 1)
    lower = position.floor().long().clamp(max=max(bands - 2, 0))
    upper_weight = (position - lower).clamp(0, 1)
    matrix = torch.zeros(num_bins, bands, dtype=torch.float64, device=device)
    rows = torch.arange(num_bins, device=device)
    matrix[rows, lower] += 1 - upper_weight
    matrix[rows, (lower + 1).clamp(max=bands - 1)] += upper_weight
    return matrix.float()


@lru_cache(maxsize=16)
def _band_to_bin_matrix_on(num_bins: int, bands: int, sample_rate: int, device: torch.device,
                           dtype: torch.dtype) -> Tensor:
    """`band_to_bin_matrix` already on `device` in `dtype`: on a GPU a copy from the host at every
    network call would wait for the GPU's queue (BENCHMARKS.md, "GPU suite")."""
    return band_to_bin_matrix(num_bins, bands, sample_rate).to(device, dtype)


def envelope_image(envelope: Tensor, num_bins: int, sample_rate: int) -> Tensor:
    """(B, E, T) envelope -> (B, 1, num_bins, T): each STFT bin's interpolated envelope value."""
    bands = envelope.shape[1]
    if torch.compiler.is_compiling():  # made inside the graph: torch.compile keeps no caches
        matrix = band_to_bin_weights(num_bins, bands, sample_rate, envelope.device).to(envelope.dtype)
    else:
        matrix = _band_to_bin_matrix_on(num_bins, bands, sample_rate, envelope.device, envelope.dtype)
    return torch.einsum("fe,bet->bft", matrix, envelope).unsqueeze(1)


def envelope_bin_power(envelope: Tensor, num_bins: int, sample_rate: int) -> Tensor:
    """(B, E, T) normalised log-mel envelope -> (B, F, T) the power per STFT bin it describes.

    The inverse of `log_mel_envelope` up to the bands' resolution: each band's power spread over
    the bins its filter weighs (the filter's total weight), interpolated between band centres in
    the log domain (`band_to_bin_matrix`). Used to tell where the lips say the target speaks.
    """
    filters = mel_filterbank(num_bins, envelope.shape[1], sample_rate).to(envelope.device)
    width = filters.sum(0).clamp_min(1e-6)  # (E,) bins per band, by filter weight
    band_power = (torch.exp(envelope.float() * ENVELOPE_SCALE - ENVELOPE_OFFSET) - ENVELOPE_FLOOR).clamp_min(0)
    log_per_bin = torch.log(band_power / width[:, None] + 1e-12)
    matrix = band_to_bin_matrix(num_bins, envelope.shape[1], sample_rate).to(envelope.device)
    return torch.exp(torch.einsum("fe,bet->bft", matrix, log_per_bin))


SLOW_FRAMES = 5  # video frames (200 ms, about a syllable) of the moving mean that is an envelope's slow part


def slow_part(envelope: Tensor, frames: int = SLOW_FRAMES) -> Tensor:
    """(..., T, bands) moving mean over `frames` video frames of a (..., T, bands) envelope or envelope
    error, edges replicated; what is left (`envelope - slow_part(envelope)`) is its fast part, the
    movements shorter than a syllable that tell letters apart (BENCHMARKS.md, "Which of the lips'
    errors costs words")."""
    lead = envelope.shape[:-2]
    series = envelope.reshape(-1, *envelope.shape[-2:]).transpose(1, 2)  # (N, bands, T)
    padded = torch.nn.functional.pad(series, (frames // 2, frames - 1 - frames // 2), mode="replicate")
    return torch.nn.functional.avg_pool1d(padded, frames, stride=1).transpose(1, 2).reshape(*lead, -1, envelope.shape[-1])
