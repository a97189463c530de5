"""The pipeline: video-to-speech and posterior-sampling enhancement, end to end.

A tiny model is trained inside the tests (module fixture) on a trivially learnable paired
corpus: sine tones whose pitch follows the brightness of a uniform grey "mouth" video. If the
lip conditioning works end to end, generated audio follows the video's brightness; if the
prior is a prior of tones, every enhancement method removes white noise.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from avdiff.config import AVDiffConfig, load_config
from avdiff.errors import InputError
from avdiff.pipeline.inputs import MouthVideo
from avdiff.pipeline import AVDiffusionPipeline
from avdiff.training.trainer import train
from tinycorpus import (  # noqa: E402  (tests/ is on sys.path)
    TONE_STEPS, TONE_TRAINING, brightness_video, dominant_frequency, make_tiny_corpus, si_sdr, tone_example,
)

@pytest.fixture(scope="module")
def tone_pipeline(tmp_path_factory) -> AVDiffusionPipeline:
    root = tmp_path_factory.mktemp("tones")
    manifest = make_tiny_corpus(root / "data", num_items=32, num_frames=40, size=32)
    config = load_config(AVDiffConfig, None, [f"data.train_manifest={manifest}", *TONE_TRAINING])
    result = train(config, root / "run", max_steps=TONE_STEPS, cpu=True)
    return AVDiffusionPipeline.from_pretrained(result.model_dir)


# ----------------------------------------------------------------------------- trained model

# The enhancement tests take 1 s of the tone clip (5 levels): the methods' margins are as wide as on 2 s.
ENHANCEMENT_LEVELS = 5


def test_generated_pitch_follows_the_lips(tone_pipeline):
    levels, _, _ = tone_example()
    video = brightness_video(levels)
    out = tone_pipeline.generate(video, num_samples=2, seed=0)
    expected = 300 + 1500 * levels
    for audio in out.audio:
        measured = np.array([dominant_frequency(audio[640 * j + 64 : 640 * j + 576]) for j in range(len(levels))])
        assert np.corrcoef(measured, expected)[0, 1] > 0.8
        assert np.median(np.abs(measured - expected)) < 150
    # Without the lips (no usable face anywhere) the pitch cannot follow the brightness.
    blind = tone_pipeline.generate(MouthVideo(video, np.zeros(len(levels), dtype=bool)), num_samples=2, seed=0)
    for audio in blind.audio:
        measured = np.array([dominant_frequency(audio[640 * j + 64 : 640 * j + 576]) for j in range(len(levels))])
        assert abs(np.corrcoef(measured, expected)[0, 1]) < 0.6
    assert out.network_calls == 2 * 12 - 1  # Heun, 12 levels, lips encoded once


@pytest.mark.parametrize("method,steps", [("udiffse+", 30), ("udiffse", 15), ("dps", 30)])
def test_each_enhancement_method_raises_si_sdr(tone_pipeline, method, steps):
    levels, clean, noisy = tone_example(num_levels=ENHANCEMENT_LEVELS)
    options = {"em_iterations": 3} if method == "udiffse" else {}
    before = si_sdr(noisy, clean)
    for video in (None, brightness_video(levels)):
        out = tone_pipeline.enhance(noisy, sample_rate=16000, video=video, method=method, steps=steps, options=options)
        assert out.audio.shape == noisy.shape and np.isfinite(out.audio).all()
        assert si_sdr(out.audio, clean) > before + 2.0, (method, video is not None)


# NMF updates per pass: None = one per refit level; 150 = about five per level of the 30.
STABILITY_CASES = [dict(likelihood_every=every, nmf_pass_updates=updates, corrector_steps=corrector)
                   for every in (1, 2) for updates in (None, 150) for corrector in (0, 1)]


def test_udiffse_plus_never_ends_below_its_input(tone_pipeline):
    """The failure this guards against: with the NMF refitted at every level from a blurry D(x),
    the noise model absorbed the speech and udiffse+ fell from +9.8 to -10 dB at every 2nd level."""
    levels, clean, noisy = tone_example(num_levels=ENHANCEMENT_LEVELS)
    before = si_sdr(noisy, clean)
    results = {}
    for case in STABILITY_CASES:
        out = tone_pipeline.enhance(noisy, sample_rate=16000, method="udiffse+", options=case)
        results[tuple(case.values())] = si_sdr(out.audio, clean) - before
    assert min(results.values()) > -1.0, results


def test_udiffse_paper_preset_runs_the_published_schedule(random_pipeline):
    noisy = (0.1 * np.random.default_rng(5).standard_normal(4000)).astype(np.float32)  # 0.25 s: calls, not length
    out = random_pipeline.enhance(noisy, sample_rate=16000, method="udiffse-paper")
    # 5 EM passes x 30 levels x (corrector + predictor), the 2 parallel samples in one batch.
    assert out.network_calls == 5 * 30 * 2
    assert out.audio.shape == noisy.shape and np.isfinite(out.audio).all()


# ----------------------------------------------------------------------------- lengths and seeds


def test_generated_duration_is_the_videos_to_the_sample(random_pipeline):
    video = np.random.default_rng(0).integers(0, 255, (13, 40, 40), dtype=np.uint8)
    out = random_pipeline.generate(video, num_samples=2, seed=3)
    assert out.audio.shape == (2, 13 * 640) and out.sample_rate == 16000
    assert not np.allclose(out.audio[0], out.audio[1])
    again = random_pipeline.generate(video, num_samples=2, seed=3)
    np.testing.assert_array_equal(out.audio, again.audio)


def test_long_video_is_generated_in_chunks_of_exact_total_length(random_pipeline):
    video = np.random.default_rng(1).integers(0, 255, (90, 32, 32), dtype=np.uint8)
    out = random_pipeline.generate(video, chunk_frames=150, overlap_frames=30, seed=0)
    assert out.audio.shape == (1, 90 * 640) and np.isfinite(out.audio).all()
    assert out.network_calls == 4 * (2 * 3 - 1)  # 451 frames in 4 chunks of 150, Heun with 3 levels


def test_enhanced_output_has_the_inputs_rate_and_length(random_pipeline, tmp_path):
    rng = np.random.default_rng(0)
    stereo = (0.1 * rng.standard_normal((22050 + 123, 2))).astype(np.float32)
    path = tmp_path / "noisy.wav"
    sf.write(path, stereo, 22050)
    out = random_pipeline.enhance(path, method="udiffse+", steps=3)
    assert out.sample_rate == 22050 and out.audio.shape == (22050 + 123,) and np.isfinite(out.audio).all()
    assert any("2 channels mixed down" in n for n in out.notes) and any("resampled from 22050" in n for n in out.notes)


def test_audio_visual_with_every_face_missing_equals_audio_only(random_pipeline):
    noisy = (0.1 * np.random.default_rng(2).standard_normal(16000)).astype(np.float32)
    video = MouthVideo(np.full((25, 32, 32), 120, np.uint8), np.zeros(25, dtype=bool))
    for method in ("udiffse+", "udiffse", "dps"):
        options = {"steps": 3, **({"em_iterations": 2} if method == "udiffse" else {})}
        audio_only = random_pipeline.enhance(noisy, sample_rate=16000, method=method, seed=4, options=options)
        no_face = random_pipeline.enhance(noisy, sample_rate=16000, video=video, method=method, seed=4, options=options)
        np.testing.assert_array_equal(audio_only.audio, no_face.audio)
        with_face = random_pipeline.enhance(noisy, sample_rate=16000, video=MouthVideo(video.rois, ~video.face_ok),
                                            method=method, seed=4, options=options)
        assert not np.array_equal(audio_only.audio, with_face.audio)


def test_five_minutes_enhance_in_bounded_chunks(random_pipeline):
    noisy = (0.05 * np.random.default_rng(3).standard_normal(300 * 16000)).astype(np.float32)
    out = random_pipeline.enhance(noisy, sample_rate=16000, method="udiffse+", steps=1, batch_size=64,
                                  options={"num_samples": 1})
    assert out.audio.shape == noisy.shape and np.isfinite(out.audio).all()
    assert out.network_calls == 3 * 1  # 168 chunks of 256 frames in 3 batches of at most 64


def test_clipped_and_silent_inputs_give_finite_output(random_pipeline):
    t = np.arange(16000) / 16000
    clipped = np.clip(2.0 * np.sin(2 * np.pi * 220 * t), -1, 1).astype(np.float32)
    out = random_pipeline.enhance(clipped, sample_rate=16000, steps=3)
    assert np.isfinite(out.audio).all() and any("clipped" in n for n in out.notes)
    silent = random_pipeline.enhance(np.zeros(8000, np.float32), sample_rate=16000, steps=3)
    assert np.array_equal(silent.audio, np.zeros(8000, np.float32)) and silent.network_calls == 0
    tiny = random_pipeline.enhance(np.full(8000, 1e-4, np.float32), sample_rate=16000, steps=3)
    assert np.isfinite(tiny.audio).all()


# ----------------------------------------------------------------------------- bad inputs


def test_bad_audio_inputs_are_clear_errors(random_pipeline, tmp_path):
    nan = np.zeros(16000, np.float32)
    nan[100] = np.nan
    sf.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    with pytest.raises(InputError, match="NaN or infinite"):
        random_pipeline.enhance(tmp_path / "nan.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(InputError, match="empty.wav"):
        random_pipeline.enhance(tmp_path / "empty.wav")
    with pytest.raises(InputError, match="no such file|not found|does not exist"):
        random_pipeline.enhance(tmp_path / "missing.wav")
    with pytest.raises(InputError, match="lasts"):
        random_pipeline.enhance(np.zeros(16000 * 5, np.float32) + 0.01, sample_rate=16000,
                                video=np.zeros((25, 32, 32), np.uint8))


def test_video_without_a_face_is_a_clear_error(random_pipeline, tmp_path):
    from avfixtures import write_video

    frames = np.random.default_rng(0).integers(0, 255, (10, 96, 96, 3), dtype=np.uint8)
    path = write_video(tmp_path / "noface.mp4", frames)
    with pytest.raises(InputError, match="no face found"):
        random_pipeline.generate(path, landmarks="dlib")


def test_model_folder_with_a_missing_component_is_a_clear_error(random_pipeline, tmp_path):
    folder = random_pipeline.save_pretrained(tmp_path / "model")
    for path in (folder / "score_model").iterdir():
        path.unlink()
    with pytest.raises(InputError, match="component 'score_model' is missing"):
        AVDiffusionPipeline.from_pretrained(folder)


def test_model_folder_records_its_sampling_and_enhancement_defaults(random_pipeline, tmp_path):
    """A model's chosen defaults travel in its folder and are what generate and enhance use."""
    from avdiff.config import EnhancementConfig, SamplerConfig

    components = replace(random_pipeline.components,
                         sampler=SamplerConfig(name="dpmpp_2m", steps=4, options={"eta": 0.5}),
                         enhancement=EnhancementConfig(method="diffpir", options={"steps": 5}))
    folder = AVDiffusionPipeline(components).save_pretrained(tmp_path / "model")
    loaded = AVDiffusionPipeline.from_pretrained(folder)
    assert loaded.components.sampler == components.sampler
    assert loaded.components.enhancement == components.enhancement
    video = np.random.default_rng(0).integers(0, 255, (5, 40, 40), dtype=np.uint8)
    assert loaded.generate(video).network_calls == 4
    noisy = (0.1 * np.random.default_rng(5).standard_normal(4000)).astype(np.float32)
    assert loaded.enhance(noisy, sample_rate=16000).network_calls == 5
    assert loaded.enhance(noisy, sample_rate=16000, method="udiffse+", steps=3).network_calls == 3
