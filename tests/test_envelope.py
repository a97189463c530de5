"""The lips' log-mel envelope: its maths, the auxiliary loss that trains it, and the UNet's picture of it."""

from __future__ import annotations

import math

import pytest
import torch

from avdiff.audio.envelope import (band_to_bin_matrix, envelope_image, log_mel_envelope, mel_filterbank,
                                   per_video_frame)


def test_band_to_bin_rows_interpolate_between_band_centres():
    matrix = band_to_bin_matrix(256, 32, 16000)
    assert matrix.shape == (256, 32)
    assert torch.allclose(matrix.sum(1), torch.ones(256))
    assert (matrix >= 0).all()
    # Each bin mixes at most two neighbouring bands, and the band it leans on never goes down with frequency.
    assert ((matrix > 0).sum(1) <= 2).all()
    assert (torch.diff(matrix.argmax(1)) >= 0).all()
    # A band's triangle peaks where the interpolation gives it all the weight.
    filters = mel_filterbank(256, 32, 16000)
    for band in (3, 15, 28):
        assert matrix[filters[:, band].argmax(), band] > 0.9


def test_envelope_of_a_tone_peaks_in_its_band():
    from avdiff.audio.spectrogram import SpectrogramTransform

    transform = SpectrogramTransform()
    t = torch.arange(16000) / 16000
    tone = 0.5 * torch.sin(2 * math.pi * 1000 * t)[None]
    power = transform.stft(tone).abs().square()
    envelope = log_mel_envelope(power, 32, 16000)
    filters = mel_filterbank(power.shape[-2], 32, 16000)
    assert envelope.shape == (1, 32, power.shape[-1])
    bin_of_tone = round(1000 * 255 / 8000)
    assert filters[bin_of_tone, envelope[0, :, 50].argmax()] > 0  # a band whose triangle holds 1 kHz
    assert envelope[0, 20:, 50].max() < -0.9  # bands far above it stay at the floor
    silence = log_mel_envelope(torch.zeros_like(power), 32, 16000)
    assert silence.max() < -0.9 and envelope.max() > 0.0  # the floor reads as about -1


def test_per_video_frame_means_count_only_frames_inside_the_clip():
    envelope = torch.arange(12, dtype=torch.float32).view(1, 1, 12).repeat(1, 2, 1)  # 12 STFT frames
    mask = torch.ones(1, 12, dtype=torch.bool)
    mask[0, 7:] = False  # padding from STFT frame 7 on
    means, coverage = per_video_frame(envelope, mask, video_frames=3, stft_per_video_frame=5)
    assert torch.allclose(means[0, 0], torch.tensor([2.0, 5.5, 0.0]))
    assert torch.allclose(coverage[0], torch.tensor([1.0, 0.4, 0.0]))


def test_envelope_image_draws_each_band_at_its_frequencies():
    envelope = torch.zeros(1, 8, 4)
    envelope[0, 6, 2] = 1.0  # a high band, one frame
    image = envelope_image(envelope, 64, 16000)
    assert image.shape == (1, 1, 64, 4)
    assert image[0, 0, :, [0, 1, 3]].abs().max() == 0  # other frames stay empty
    column = image[0, 0, :, 2]
    peak = int(mel_filterbank(64, 8, 16000)[:, 6].argmax())
    assert column[peak] > 0.9 and column[:20].max() == 0  # drawn where band 6 lies, not at the bottom


def test_unet_envelope_channels_reach_the_output_and_masked_frames_do_not():
    from avdiff.models import ScoreUNet

    torch.manual_seed(0)
    unet = ScoreUNet(block_out_channels=(8, 16), attention_levels=(False, False), norm_num_groups=4,
                     attention_head_dim=8, cond_channels=8, cond_hidden_channels=8, cond_envelope_bands=4,
                     cond_spectral_channels=0).eval()
    assert unet.conv_in.in_channels == 2 + unet.config.frequency_channels + 1
    x, noise = torch.randn(1, 2, 32, 20), torch.zeros(1)
    cond, mask = torch.randn(1, 8, 20), torch.ones(1, 20, dtype=torch.bool)
    mask[0, 10:] = False
    # The envelope channel is read through conv_in only; zero the FiLM path so only it can act.
    with torch.no_grad():
        for film in [*unet.down_film, unet.mid_film, *unet.up_film]:
            film.proj.weight.zero_()
            film.proj.bias.zero_()
        base = unet(x, noise, cond, mask)
        changed = cond.clone()
        changed[0, :4, 2] += 3.0  # an envelope channel at a kept frame
        assert (unet(x, noise, changed, mask) - base).abs().max() > 1e-4
        hidden = cond.clone()
        hidden[0, :4, 15] += 3.0  # at a masked frame: replaced by the null condition
        assert torch.equal(unet(x, noise, hidden, mask), base)


def test_envelope_bands_must_agree_between_lips_and_unet():
    from avdiff.config import AVDiffConfig, load_config
    from avdiff.errors import ConfigError

    config = load_config(AVDiffConfig, "v2s-cpu")
    assert config.lip_encoder.envelope_bands == config.score_model.unet.cond_envelope_bands > 0
    with pytest.raises((ConfigError, ValueError), match="envelope_bands"):
        load_config(AVDiffConfig, "v2s-cpu", ["score_model.unet.cond_envelope_bands=16"])
    with pytest.raises((ConfigError, ValueError), match="envelope_bands"):
        load_config(AVDiffConfig, "tiny", ["lip_encoder.envelope_bands=65"])


def test_envelope_loss_trains_the_lips_towards_the_speech_envelope():
    """The auxiliary term is in the loss, its gradient reaches the lip encoder, and a few steps on
    one batch bring the lips' envelope channels closer to the speech's log-mel envelope."""
    from avdiff.audio.spectrogram import SpectrogramTransform
    from avdiff.config import SpectrogramConfig
    from avdiff.config.schema import TrainingConfig
    from avdiff.diffusion import EDMFormulation
    from avdiff.models import LipEncoder, ScoreUNet
    from avdiff.training.model import AVDiffusionModel

    torch.manual_seed(0)
    model = AVDiffusionModel(
        LipEncoder.from_preset("tiny", output_dim=8, envelope_bands=4),
        ScoreUNet(block_out_channels=(8, 16), attention_levels=(False, False), norm_num_groups=4,
                  attention_head_dim=8, cond_channels=8, cond_hidden_channels=8, cond_envelope_bands=4),
        EDMFormulation(sigma_data=0.1), SpectrogramTransform(SpectrogramConfig(n_fft=254)),
        TrainingConfig(envelope_loss_weight=1.0))
    frames = 6
    t = torch.arange(frames * 640 - 128) / 16000
    audio = torch.stack([0.5 * torch.sin(2 * math.pi * 300 * t), 0.5 * torch.sin(2 * math.pi * 3000 * t)])
    video = torch.zeros(2, frames, 32, 32, dtype=torch.uint8)
    video[1] = 200  # the two mouths differ, and so do their sounds
    valid, mask = torch.ones(2, frames, dtype=torch.bool), torch.ones(2, 5 * frames, dtype=torch.bool)  # 30 STFT frames
    optimizer = torch.optim.Adam(model.lip_encoder.parameters(), lr=1e-2)
    errors = []
    for step in range(30):
        out = model(audio, video, valid, valid, mask, torch.Generator().manual_seed(step),
                    drop_conditions=False)
        assert torch.isclose(out.loss, out.per_item.mean() + out.auxiliary["envelope"], atol=1e-5)
        optimizer.zero_grad()
        out.loss.backward()
        assert model.lip_encoder.output_proj.weight.grad.abs().sum() > 0
        optimizer.step()
        errors.append(float(out.auxiliary["envelope"]))
    assert errors[-1] < 0.3 * errors[0]
    # With no usable face the envelope has nothing to predict and adds nothing.
    out = model(audio, video, valid, torch.zeros_like(valid), mask, torch.Generator(),
                drop_conditions=False)
    assert float(out.auxiliary["envelope"]) == 0.0


def test_an_envelopes_slow_part_keeps_the_trend_and_drops_the_flicker():
    from avdiff.audio.envelope import SLOW_FRAMES, slow_part

    frames = 40
    trend = torch.linspace(-1.0, 1.0, frames).unsqueeze(1).repeat(1, 2)
    flicker = torch.tensor([1.0, -1.0]).repeat(frames // 2).unsqueeze(1).repeat(1, 2)
    slow = slow_part(trend + flicker)
    assert slow.shape == (frames, 2)
    inner = slice(SLOW_FRAMES, frames - SLOW_FRAMES)
    # a moving mean of odd length passes a straight line and keeps 1/5 of a +-1 alternation
    assert (slow[inner] - trend[inner]).abs().max() <= 1.0 / SLOW_FRAMES + 1e-6
    torch.testing.assert_close(slow_part(torch.full((7, 3), 2.5)), torch.full((7, 3), 2.5))
    batched = torch.stack([trend + flicker, trend])  # (B, T, bands): each item on its own
    torch.testing.assert_close(slow_part(batched), torch.stack([slow, slow_part(trend)]))


def test_envelope_image_is_the_same_compiled_and_from_the_cache():
    """The interpolation matrix is made once per shape and device (a network draws the envelope at
    every call); under torch.compile it is made inside the graph, with the same values."""
    from avdiff.audio.envelope import band_to_bin_weights

    assert band_to_bin_matrix(256, 32, 16000) is band_to_bin_matrix(256, 32, 16000)
    assert torch.equal(band_to_bin_weights(256, 32, 16000), band_to_bin_matrix(256, 32, 16000))
    envelope = torch.randn(2, 32, 7)
    eager = envelope_image(envelope, 256, 16000)
    compiled = torch.compile(lambda e: envelope_image(e, 256, 16000), backend="eager", fullgraph=True)(envelope)
    assert eager.shape == (2, 1, 256, 7)
    assert torch.allclose(compiled, eager, atol=1e-6)
