"""The lips' per-frame reliability (issue 25): no face and occluded mouths score low, a talking mouth
high; enhancement masks unreliable frames and weighs the lips by it; manifests carry it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avdiff.data.manifest import validate_item
from avdiff.pipeline.av_agreement import (AgreementSettings, agreement_correlation, agreement_score, detrended,
                                          mixture_envelope, window_correlation)
from avdiff.errors import InputError
from avdiff.mouth.reliability import FILLED_FRAME_SCORE, USABLE_SCORE, frame_reliability
from avdiff.pipeline.inputs import MouthVideo


def talking_mouth(frames: int = 75, size: int = 48, seed: int = 0) -> np.ndarray:
    """A dark ellipse opening and closing on skin, with sensor noise: (T, size, size) uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - size / 2
    opening = 2 + 6 * np.abs(np.sin(np.arange(frames) / 3.0))
    crops = np.where((xx[None] / 14) ** 2 + (yy[None] / opening[:, None, None]) ** 2 < 1, 60.0, 150.0)
    return np.clip(crops + rng.normal(0, 3, crops.shape), 0, 255).astype(np.uint8)


def test_a_talking_mouth_is_reliable_and_an_occluded_one_is_not() -> None:
    crops = talking_mouth()
    face_ok = np.ones(len(crops), bool)
    assert frame_reliability(crops, face_ok).min() == 1.0
    occluded = crops.copy()
    occluded[20:35, 10:40, 8:40] = 0  # a dark hand over the mouth
    score = frame_reliability(occluded, face_ok)
    assert score[20:35].max() < USABLE_SCORE and score[:20].min() == 1.0 and score[35:].min() == 1.0


def test_no_face_scores_zero_and_filled_frames_half() -> None:
    crops = talking_mouth()
    face_ok = np.ones(len(crops), bool)
    face_ok[:10] = False
    found = face_ok.copy()
    found[40:42] = False  # a short detector miss, filled from the neighbours
    score = frame_reliability(crops, face_ok, found)
    assert (score[:10] == 0).all() and (score[40:42] == FILLED_FRAME_SCORE).all() and score[10:40].min() == 1.0


def test_enhancement_masks_unreliable_frames_and_says_so(random_pipeline) -> None:
    crops = talking_mouth(frames=25, size=40)
    crops[10:15, 8:32, 8:32] = 255  # a white card in front of the mouth
    video = random_pipeline.load_video(MouthVideo(crops, np.ones(25, bool)))
    assert video.trust[10:15].max() < USABLE_SCORE and video.trust[15:].min() == 1.0
    _, mask = random_pipeline.condition(video, 126, USABLE_SCORE)
    assert not mask[0, 50:75].any() and mask[0, 75:].all() and mask[0, :50].all()  # 5 STFT frames per video frame
    trust = random_pipeline.lip_trust(video, 130)
    assert trust.shape == (1, 130) and float(trust[0, 128:].abs().max()) == 0.0  # past the video
    noisy = 0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    out = random_pipeline.enhance(noisy, sample_rate=16000, video=video, steps=2, options={"num_samples": 1})
    assert any("the lips are unreliable on 5 of 25 frames" in note for note in out.notes)


def test_manifests_carry_the_reliability() -> None:
    item = {"id": "a", "audio": "a.wav", "video": "a.npy", "num_frames": 3, "duration": 0.12, "speaker": "s",
            "reliability": [1.0, 0.5, 0]}
    assert validate_item(json.loads(json.dumps(item)), "m:1")["reliability"] == [1.0, 0.5, 0]
    for bad in ([1.0, 2.0, 0.0], [1.0, 1.0], [True, 1.0, 1.0]):
        with pytest.raises(InputError, match="reliability must be 3 numbers"):
            validate_item({**item, "reliability": bad}, "m:1")


def modulated_noise(seconds: float, syllables_hz: float, seed: int, bands: int = 4) -> np.ndarray:
    """Noise in `bands` mel-spaced bands whose loudness each rises and falls at random about
    `syllables_hz` times a second (speech-like, not periodic), so its envelope moves and two seeds
    move independently."""
    rng = np.random.default_rng(seed)
    samples, hop = int(16000 * seconds), int(16000 / syllables_hz / 2)
    edges = 700 * (10 ** (np.linspace(0, 2595 * np.log10(1 + 8000 / 700), bands + 1) / 2595) - 1)
    frequencies, out = np.fft.rfftfreq(samples, 1 / 16000), np.zeros(samples)
    for low, high in zip(edges[:-1], edges[1:]):
        band = np.fft.irfft(np.fft.rfft(rng.standard_normal(samples)) * ((frequencies >= low) & (frequencies < high)), samples)
        steps = rng.uniform(0.05, 1.0, samples // hop + 2)
        out += band * np.interp(np.arange(samples), np.arange(len(steps)) * hop, steps)
    return (0.2 * out / out.std()).astype(np.float32)


def sentence_envelope(rng: np.random.Generator, frames: int = 150, bands: int = 4) -> np.ndarray:
    """(frames, bands) a sentence's envelope: a second's rise into speech and fall out of it (the shape
    every sentence shares) with its own syllables on top (a new level every 3 frames per band)."""
    t = np.arange(frames)
    coarse = np.clip(np.minimum(t - 20, frames - 20 - t) / 25, 0, 1)[:, None]
    syllables = np.repeat(rng.uniform(-1, 1, (frames // 3 + 1, bands)), 3, 0)[:frames]
    return 4 * coarse + coarse * syllables


def test_detrending_keeps_the_syllables_and_drops_the_shape_every_sentence_shares() -> None:
    """Another sentence shares the coarse shape: correlated with it left in, not once detrended;
    the same sentence stays correlated."""
    for seed in range(4):
        rng = np.random.default_rng(seed)
        heard, other = sentence_envelope(rng), sentence_envelope(rng)
        noisy = heard + 0.5 * rng.standard_normal(heard.shape)
        shape_kept = AgreementSettings(detrend_seconds=None)
        assert np.median(agreement_correlation(other, noisy, shape_kept)) > 0.8
        assert np.median(agreement_correlation(other, noisy)) < 0.2
        assert np.median(agreement_correlation(heard, noisy)) > 0.5
    ramp = np.linspace(0, 5, 60)[:, None] * np.ones((1, 3))
    assert np.abs(detrended(ramp, 13)[10:-10]).max() < 1e-9  # a straight trend is taken off entirely


def test_window_correlation_tells_related_envelopes_from_unrelated() -> None:
    rng = np.random.default_rng(0)
    heard = rng.standard_normal((60, 4))
    assert window_correlation(heard, heard, 25).min() == pytest.approx(1.0)
    assert window_correlation(-heard, heard, 25).max() == pytest.approx(-1.0)
    lips = rng.standard_normal((60, 4))
    assert abs(float(np.median(window_correlation(lips, heard, 25)))) < 0.2
    for frame, low, high in ((30, 18, 43), (2, 0, 15), (59, 47, 60)):  # centred, cut at either end
        a, b = lips[low:high] - lips[low:high].mean(0), heard[low:high] - heard[low:high].mean(0)
        expected = (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())
        assert window_correlation(lips, heard, 25)[frame] == pytest.approx(expected, abs=1e-6)
    assert window_correlation(lips, heard[:40], 25)[40:].tolist() == [0.0] * 20  # past the shorter envelope
    settings = AgreementSettings(window_seconds=1.0, unrelated=0.1, related=0.3)
    assert agreement_score(np.array([-0.5, 0.1, 0.2, 0.3, 0.9]), settings).tolist() == pytest.approx([0, 0, 0.5, 1, 1])
    assert settings.window_frames == 25


def test_agreement_settings_refuse_what_cannot_score() -> None:
    for bad in ({"unrelated": 0.3, "related": 0.3}, {"window_seconds": 0.05}, {"detrend_seconds": 0.04}):
        with pytest.raises(ValueError, match="agreement needs"):
            AgreementSettings(**bad)


@pytest.fixture
def enveloped_pipeline(tmp_path):
    """A tiny model whose lip encoder predicts a 4-band envelope (what the agreement reads)."""
    import dataclasses

    from avdiff.models import LipEncoder
    from avdiff.pipeline import save_model_folder
    from avdiff.pipeline.pipeline import AVDiffusionPipeline
    from tinymodels import tiny_components

    components = dataclasses.replace(tiny_components(), lip_encoder=LipEncoder.from_preset("tiny", output_dim=8,
                                                                                           envelope_bands=4))
    return AVDiffusionPipeline.from_pretrained(save_model_folder(components, tmp_path / "model"))


def test_lips_out_of_step_with_the_sound_are_not_trusted(enveloped_pipeline, monkeypatch) -> None:
    """The first half's lips say what is heard, the second's say another sound: only the first is trusted,
    to within half the agreement's window. The toy's independent envelopes correlate by chance with a
    spread of about 0.12 over 3 s (real lips of another speaker: at most 0.09 at the 90th percentile),
    so the thresholds are raised here above the toy's chance, not the shipped ones."""
    import torch

    pipeline = enveloped_pipeline
    pipeline.agreement = AgreementSettings(unrelated=0.2, related=0.4)
    frames, half = 200, pipeline.agreement.window_frames // 2  # 8 s; the default window is 3 s
    heard_wave = torch.from_numpy(modulated_noise(8.0, 4.0, seed=1))
    other_wave = torch.from_numpy(modulated_noise(8.0, 4.0, seed=2))
    heard = mixture_envelope(pipeline.transform, heard_wave.unsqueeze(0), 4, frames)
    other = mixture_envelope(pipeline.transform, other_wave.unsqueeze(0), 4, frames)
    embeddings = torch.zeros(frames, 8)
    embeddings[:100, :4] = torch.from_numpy(heard[:100])
    embeddings[100:, :4] = torch.from_numpy(other[100:])
    monkeypatch.setattr(pipeline, "encode_lips", lambda video: embeddings)
    video, used = pipeline.heard_agreement(MouthVideo(talking_mouth(frames, 40), np.ones(frames, bool)), heard_wave)
    assert used is embeddings
    trust = np.round(video.trust, 2)
    assert video.trust[:100 - half].min() > 0.9 and video.trust[100 + half:].max() < USABLE_SCORE, trust


def test_enhancement_weighs_the_lips_by_their_agreement_unless_told_not_to(enveloped_pipeline, monkeypatch) -> None:
    from avdiff.cli import build_parser
    from avdiff.pipeline.shipped import LIP_AGREEMENT_BY_DEFAULT

    calls = []
    original = enveloped_pipeline.heard_agreement
    monkeypatch.setattr(enveloped_pipeline, "heard_agreement", lambda *a: calls.append(1) or original(*a))
    noisy, video = modulated_noise(1.0, 3.0, seed=3), MouthVideo(talking_mouth(25, 40), np.ones(25, bool))
    default = int(LIP_AGREEMENT_BY_DEFAULT)
    for asked, expected in (({}, default), ({"lip_agreement": False}, default), ({"lip_agreement": True}, default + 1)):
        enveloped_pipeline.enhance(noisy, sample_rate=16000, video=video, steps=1, options={"num_samples": 1}, **asked)
        assert len(calls) == expected
    for command in ("enhance", "extract"):
        required = ["--noisy", "n.wav"] if command == "enhance" else ["--mixture", "m.wav", "--video", "v.mp4"]
        assert build_parser().parse_args([command, *required]).lip_agreement is LIP_AGREEMENT_BY_DEFAULT
        assert build_parser().parse_args([command, *required, "--no-lip-agreement"]).lip_agreement is False
        assert build_parser().parse_args([command, *required, "--lip-agreement"]).lip_agreement is True


def test_unusable_frames_stay_out_of_the_lip_encoder(random_pipeline) -> None:
    """A covered span is left out of the encoder's frame mask: what it shows cannot reach the other
    frames' embeddings through the encoder's temporal context (they come out as zeros)."""
    crops = talking_mouth(frames=25, size=32)
    covered = crops.copy()
    covered[10:15] = 255  # a white card, whatever it shows
    reliability = np.ones(25, np.float32)
    reliability[10:15] = 0.0
    face_ok = np.ones(25, bool)
    plain = random_pipeline.encode_lips(MouthVideo(crops, face_ok, reliability))
    card = random_pipeline.encode_lips(MouthVideo(covered, face_ok, reliability))
    assert np.allclose(plain.numpy(), card.numpy(), atol=1e-5) and float(card[10:15].abs().max()) == 0.0
    shown = random_pipeline.encode_lips(MouthVideo(covered, face_ok))  # trusted everywhere: the card is read
    assert not np.allclose(shown[:10].numpy(), plain[:10].numpy(), atol=1e-3)
