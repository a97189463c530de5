"""Landmark backends and their clean-up over time (gap filling, smoothing, face tracking)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from avfixtures import GRID_CLIPS, requires_grid

from avdiff.landmarks import LandmarkBackendError, Landmarks, create_detector, fill_gaps, smooth, track
from avdiff.landmarks.base import pick_face


def _landmarks(found: list[bool]) -> Landmarks:
    t = np.arange(len(found), dtype=np.float32)
    points = np.zeros((len(found), 68, 2), np.float32) + t[:, None, None] * np.array([1.0, 2.0], np.float32)
    points[~np.array(found)] = np.nan
    return Landmarks(points=points, found=np.array(found))


def test_fill_gaps_interpolates_short_and_flags_long() -> None:
    found = [True, False, False, True, True] + [False] * 7 + [True, False]
    filled = fill_gaps(_landmarks(found), max_gap=2)
    assert not np.isnan(filled.points).any()
    # Short interior gap: linear interpolation, trusted.
    np.testing.assert_allclose(filled.points[1:3, 0], [[1, 2], [2, 4]])
    assert filled.face_ok[:5].all()
    # Long gap: still filled (for a crop) but flagged.
    assert not filled.face_ok[5:12].any()
    np.testing.assert_allclose(filled.points[8, 0], [8, 16])
    # Trailing short gap: held at the last detection, trusted.
    np.testing.assert_allclose(filled.points[13, 0], [12, 24])
    assert filled.face_ok[12:].all()
    with pytest.raises(ValueError, match="no face"):
        fill_gaps(_landmarks([False, False]))


def test_smoothing_is_centred() -> None:
    ramp = np.arange(10, dtype=np.float32)[:, None, None] * np.ones((1, 68, 2), np.float32)
    out = smooth(ramp, 5)
    np.testing.assert_allclose(out[2:-2], ramp[2:-2], atol=1e-5)  # no lag on a linear motion
    jitter = ramp + np.random.default_rng(0).normal(0, 1, ramp.shape).astype(np.float32)
    assert np.abs(smooth(jitter, 5) - ramp)[2:-2].mean() < np.abs(jitter - ramp)[2:-2].mean()
    with pytest.raises(ValueError, match="odd"):
        smooth(ramp, 4)
    tracked = track(_landmarks([True, False, True]), max_gap=1, window=3)
    assert tracked.face_ok.all() and tracked.points.shape == (3, 68, 2)


def test_pick_face_follows_previous_face() -> None:
    small = np.array([10.0, 10, 50, 50])
    large = np.array([100.0, 100, 300, 300])
    assert pick_face([small, large], None) == 1  # largest when nothing is followed yet
    assert pick_face([small, large], np.array([12.0, 12, 52, 52])) == 0  # the followed one


def test_unknown_backend() -> None:
    from avdiff.errors import InputError

    with pytest.raises(InputError, match="unknown landmark backend"):
        create_detector("mediapipe")


@requires_grid
def test_dlib_detecting_every_third_frame_finds_the_same_landmarks_and_follows_a_jump() -> None:
    pytest.importorskip("dlib")
    from avdiff.landmarks.dlib_backend import DlibLandmarkDetector
    from avdiff.media import read_video

    frames = read_video(GRID_CLIPS[0]).frames[:24].copy()
    frames[13:] = np.roll(frames[13:], (30, 50), axis=(1, 2))  # the face jumps between two detections
    every_frame = DlibLandmarkDetector(detect_every=1).detect(frames)
    detector = DlibLandmarkDetector(detect_every=3)
    calls = []
    boxes = detector._boxes
    detector._boxes = lambda gray: calls.append(1) or boxes(gray)
    sparse = detector.detect(frames)
    assert sparse.found.all() and every_frame.found.all()
    difference = np.abs(sparse.points - every_frame.points)  # pixels
    assert difference[:, 48:68].max() <= 2.0 and difference.mean() <= 0.5  # the mouth's points, all points
    assert 8 <= len(calls) < 24  # a detection every third frame, and one more where the face jumped
    blank = frames.copy()
    blank[5:] = 0  # the face goes: noticed at the next detection, at most two frames late
    lost = DlibLandmarkDetector(detect_every=3).detect(blank)
    assert lost.found[:5].all() and not lost.found[7:].any()


@requires_grid
def test_dlib_finds_the_face_in_every_grid_frame() -> None:
    pytest.importorskip("dlib")
    from avdiff.media import read_video

    video = read_video(GRID_CLIPS[1])
    landmarks = create_detector("dlib").detect(video.frames[:25])
    assert landmarks.found.all() and not np.isnan(landmarks.points).any()
    p = landmarks.points
    # Anatomy: eye corners left to right, nose between the eyes and above the mouth, chin lowest.
    assert (p[:, 36, 0] < p[:, 39, 0]).all() and (p[:, 39, 0] < p[:, 42, 0]).all() and (p[:, 42, 0] < p[:, 45, 0]).all()
    assert (p[:, 36:48, 1].mean(1) < p[:, 33, 1]).all() and (p[:, 33, 1] < p[:, 48:68, 1].mean(1)).all()
    assert (p[:, 8, 1] > p[:, 48:68, 1].max(1)).all()
    # The face is where GRID puts it: in the middle third of a 360 x 288 frame.
    assert 100 < p[:, :, 0].mean() < 260 and 80 < p[:, :, 1].mean() < 250


# -- face-alignment: the loading path, with random weights under the library's file names ------
@pytest.fixture(scope="module")
def fa_weights(tmp_path_factory) -> tuple[Path, dict[str, str], torch.Tensor]:
    """TORCH_HOME-like folder with random 2D-FAN and S3FD weights saved under the expected names."""
    pytest.importorskip("face_alignment")
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    from avdiff.landmarks.fa_backend import expected_weight_files

    names = expected_weight_files()
    home = tmp_path_factory.mktemp("torch_home")
    checkpoints = home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.manual_seed(0)
    fan_state = FAN(4).state_dict()
    torch.save(fan_state, checkpoints / names["fan"])
    torch.save(s3fd().state_dict(), checkpoints / names["s3fd"])
    return home, names, fan_state["conv1.weight"].clone()


def _check_loaded(detector, fan_conv1: torch.Tensor) -> None:
    fa = detector.load()
    torch.testing.assert_close(fa.face_alignment_net.state_dict()["conv1.weight"], fan_conv1, rtol=0, atol=0)
    frames = np.random.default_rng(0).integers(0, 256, (2, 48, 64, 3), dtype=np.uint8)
    out = detector.detect(frames)
    assert out.points.shape == (2, 68, 2) and out.found.shape == (2,)
    assert np.isnan(out.points[~out.found]).all() and not np.isnan(out.points[out.found]).any()


def test_face_alignment_loads_from_torch_home(fa_weights, monkeypatch) -> None:
    from avdiff.landmarks.fa_backend import FaceAlignmentDetector

    home, names, conv1 = fa_weights
    monkeypatch.setenv("TORCH_HOME", str(home))
    detector = FaceAlignmentDetector(allow_download=False, detect_max_side=64, batch_size=2)
    assert detector._fa is None  # lazy: nothing loaded at construction
    _check_loaded(detector, conv1)


def test_face_alignment_loads_from_named_folder(fa_weights, monkeypatch, tmp_path) -> None:
    home, names, conv1 = fa_weights
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))  # the usual cache is empty
    detector = create_detector("face-alignment", weights=home / "hub" / "checkpoints", batch_size=2)
    _check_loaded(detector, conv1)


def test_face_alignment_missing_weights_is_a_clear_error(monkeypatch, tmp_path) -> None:
    pytest.importorskip("face_alignment")
    from avdiff.landmarks.fa_backend import FaceAlignmentDetector, expected_weight_files

    names = expected_weight_files()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(LandmarkBackendError, match=names["fan"]) as info:
        FaceAlignmentDetector(allow_download=False).load()
    assert names["s3fd"] in str(info.value) and "--landmark-weights" in str(info.value)
    empty = tmp_path / "weights"
    empty.mkdir()
    with pytest.raises(LandmarkBackendError, match="weights missing"):
        create_detector("face-alignment", weights=empty).load()


# -- auto: face-alignment where its weights are at hand, dlib otherwise -------------------------
def test_auto_takes_face_alignment_when_its_weights_are_cached(fa_weights, monkeypatch) -> None:
    from avdiff.landmarks import choose_backend

    home, _, conv1 = fa_weights
    monkeypatch.setenv("TORCH_HOME", str(home))
    choice = choose_backend("auto")
    assert choice.name == "face-alignment" and str(home) in choice.describe()
    detector = create_detector("auto", batch_size=2)
    assert detector.name == "face-alignment"
    _check_loaded(detector, conv1)


def test_auto_falls_back_to_dlib_without_face_alignment_weights(monkeypatch, tmp_path) -> None:
    pytest.importorskip("dlib")
    pytest.importorskip("face_alignment")
    from avdiff.landmarks import choose_backend

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-weights"))
    choice = choose_backend("auto")
    assert choice.name == "dlib" and choice.weights is None
    assert choice.describe().startswith("landmarks: dlib (face-alignment cannot run offline: its weights")
    assert str(tmp_path / "no-weights") in choice.reason
    assert create_detector("auto").name == "dlib"  # and it runs: see the GRID test below


@requires_grid
def test_auto_with_dlib_falls_back_on_real_frames(monkeypatch, tmp_path) -> None:
    pytest.importorskip("dlib")
    from avdiff.media import read_video

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    video = read_video(GRID_CLIPS[1])
    landmarks = create_detector("auto").detect(video.frames[:5])
    assert landmarks.found.all()


def test_auto_follows_the_weights_given(tmp_path) -> None:
    from avdiff.landmarks import choose_backend

    model = tmp_path / "shape_predictor_68_face_landmarks.dat"
    model.write_bytes(b"x")
    assert choose_backend("auto", model).name == "dlib"  # a file: dlib's model
    assert choose_backend("auto", tmp_path).name == "face-alignment"  # a folder: face-alignment's weights
    assert choose_backend("dlib").reason == "asked for"


def test_auto_with_no_backend_at_all_names_both_reasons(monkeypatch, tmp_path) -> None:
    from avdiff.landmarks import auto

    monkeypatch.setattr(auto, "face_alignment_missing", lambda folder: "no face_alignment package")
    monkeypatch.setattr(auto, "dlib_missing", lambda: "no dlib package")
    with pytest.raises(LandmarkBackendError, match="face-alignment: no face_alignment package. dlib: no dlib package"):
        auto.choose_backend("auto")


@requires_grid
def test_generate_on_a_video_picks_dlib_by_default_where_face_alignment_cannot_run(
        random_pipeline, monkeypatch, tmp_path, capsys) -> None:
    """The user's case: no --landmarks flag, no face-alignment weights, dlib installed: it works
    and says which backend it picked."""
    pytest.importorskip("dlib")
    import soundfile as sf

    from avdiff.cli import main as avdiff_main

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    folder = random_pipeline.save_pretrained(tmp_path / "model")
    output = tmp_path / "speech.wav"
    code = avdiff_main(["generate", "--model", str(folder), "--video", str(GRID_CLIPS[1]), "--output", str(output),
                        "--steps", "1", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "landmarks: dlib (face-alignment cannot run offline" in err
    assert sf.info(str(output)).duration == pytest.approx(3.0)
