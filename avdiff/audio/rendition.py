"""A source-filter rendition of a log-mel envelope: the speech video-to-speech starts sampling from.

The lips predict the speech's 32-band log-mel envelope (`avdiff.audio.envelope`), which carries
no pitch. Sampled from pure noise, the score network drew speech from it without harmonics
(harmonic-to-noise ratio about 0 dB against 13 dB for the references) and with little of the
envelope's intelligibility, while a plain channel vocoder of the same envelope was far easier to
understand (BENCHMARKS.md, "Rendition start"). So `sampler.start: rendition` renders the envelope
here (a pulse train at `pitch_hz` where the envelope looks voiced, white noise where it does not,
each STFT frame shaped to the envelope's power per bin) and the sampler refines it from a middle
noise level (`avdiff.diffusion.samplers.sample_from_start`).

Voicing is read off the envelope itself: a frame is voiced when its level below VOICED_BELOW_HZ
stands VOICED_MARGIN_DB above its level above FRICATIVE_ABOVE_HZ (vowels and voiced consonants
put their energy low, fricatives high) and it is within LOUDNESS_RANGE_DB of the clip's loudest
low-frequency frame; both tests are soft (logistic, VOICING_SOFTNESS_DB wide), so the excitation
mixes pulses and noise across a transition.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from avdiff.audio.envelope import ENVELOPE_SCALE, band_centres_hz, envelope_bin_power
from avdiff.audio.spectrogram import SpectrogramTransform

VOICED_BELOW_HZ = 1000.0  # bands centred below this: the voiced (low-frequency) level
FRICATIVE_ABOVE_HZ = 3000.0  # bands centred above this: the frication (high-frequency) level
VOICED_MARGIN_DB = 5.0  # how far the low level must stand above the high one for a voiced frame
LOUDNESS_RANGE_DB = 30.0  # frames this far below the clip's loudest low-frequency level are not voiced
VOICING_SOFTNESS_DB = 3.0  # width of both logistic tests
DB_PER_ENVELOPE_UNIT = ENVELOPE_SCALE * 10.0 / math.log(10.0)  # a normalised envelope unit in dB of power


def voicing(envelope: Tensor, sample_rate: int) -> Tensor:
    """(E, T) normalised log-mel envelope -> (T,) how voiced each frame looks, in [0, 1]."""
    centres = band_centres_hz(envelope.shape[0], sample_rate).to(envelope.device)
    low_bands, high_bands = centres < VOICED_BELOW_HZ, centres > FRICATIVE_ABOVE_HZ
    if not low_bands.any() or not high_bands.any():
        raise ValueError(f"a {envelope.shape[0]}-band envelope has no band below {VOICED_BELOW_HZ:g} Hz "
                         f"or none above {FRICATIVE_ABOVE_HZ:g} Hz to tell voicing by")
    low = envelope[low_bands].float().mean(0) * DB_PER_ENVELOPE_UNIT
    high = envelope[high_bands].float().mean(0) * DB_PER_ENVELOPE_UNIT
    tilted = torch.sigmoid((low - high - VOICED_MARGIN_DB) / VOICING_SOFTNESS_DB)
    loud = torch.sigmoid((low - low.max() + LOUDNESS_RANGE_DB) / VOICING_SOFTNESS_DB)
    return tilted * loud


def excitation(pitch_hz: float, voiced: Tensor, hop: int, sample_rate: int, generator: torch.Generator) -> Tensor:
    """(N,) source signal of N = (T - 1) * hop samples for T frames of `voiced` in [0, 1]: a unit-power
    pulse train at `pitch_hz` and unit-power white noise, mixed by power per sample."""
    length = (len(voiced) - 1) * hop
    if length <= 0:
        return torch.zeros(0)
    share = torch.nn.functional.interpolate(voiced.float()[None, None], size=length, mode="linear",
                                            align_corners=True)[0, 0]
    period = torch.floor(torch.arange(length, dtype=torch.float64) * (pitch_hz / sample_rate))
    pulses = torch.zeros(length)
    pulses[1:][period.diff() > 0] = 1.0
    pulses[0] = 1.0
    pulses = pulses / pulses.square().mean().sqrt().clamp_min(1e-9)
    noise = torch.randn(length, generator=generator)
    return share.sqrt() * pulses + (1.0 - share).sqrt() * noise


def render(envelope: Tensor, transform: SpectrogramTransform, pitch_hz: float, length: int,
           generator: torch.Generator, present: Tensor | None = None) -> Tensor:
    """(E, T) normalised log-mel envelope on the STFT grid -> (length,) waveform of its rendition,
    peak-normalised as the training speech is (silence where `present` (T,) is False).

    The excitation's STFT is flattened to unit power per frame and shaped, bin by bin, to the power
    the envelope describes (`envelope_bin_power`): harmonics at `pitch_hz` on voiced frames, noise
    on the rest, with the envelope's level and spectral shape."""
    if pitch_hz <= 0:
        raise ValueError(f"pitch_hz must be positive, got {pitch_hz}")
    frames, bins, rate = envelope.shape[-1], transform.num_bins, transform.config.sample_rate
    source = excitation(pitch_hz, voicing(envelope, rate).cpu(), transform.config.hop_length, rate,
                        generator)
    spectrum = transform.stft(source.to(envelope.device).unsqueeze(0))[0][:, :frames]
    flat = spectrum / spectrum.abs().square().mean(0, keepdim=True).sqrt().clamp_min(1e-9)
    power = envelope_bin_power(envelope.float().unsqueeze(0), bins, rate)[0]
    if present is not None:
        power = power * present.to(power)[None, :]
    wave = transform.istft((flat * power.sqrt()).unsqueeze(0), length)[0]
    return wave / wave.abs().max().clamp_min(1e-9)
