"""Mouth crops: the geometry (alignment, centring, de-rotation) and real GRID clips with dlib."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from avfixtures import GRID_CLIPS, reencode_fps, requires_grid
from scipy.ndimage import map_coordinates

from avdiff.media import read_video
from avdiff.media.color import rgb_to_gray
from avdiff.mouth import REFERENCE_STABLE, STABLE_POINTS, center_crop, crop_mouths, extract_mouth_rois
from avdiff.mouth.align import apply, estimate_similarity, invert
from avdiff.mouth.reference import REFERENCE_MOUTH_CENTRE, REFERENCE_MOUTH_WIDTH


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    r = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return np.concatenate([r, [[tx], [ty]]], axis=1)


def test_similarity_estimate_recovers_transform() -> None:
    m = _similarity(12.0, 1.7, 30.0, -5.0)
    src = np.random.default_rng(0).uniform(0, 100, (5, 2))
    np.testing.assert_allclose(estimate_similarity(src, apply(m, src)), m, atol=1e-9)
    np.testing.assert_allclose(apply(invert(m), apply(m, src)), src, atol=1e-9)
    mirrored = src * [-1, 1]
    est = estimate_similarity(src, mirrored)  # a reflection is not a similarity: det stays > 0
    assert np.linalg.det(est[:, :2]) > 0


def _face_in_frame(angle: float, scale: float, shift: tuple[float, float], size=(240, 320)):
    """A synthetic frame whose 'face' is the reference face under a known similarity.

    The mouth is a dark horizontal ellipse (50 x 16 reference px) at the reference mouth centre
    on a light background with a darker 'nose' blob; landmarks are exact."""
    ref_to_frame = _similarity(angle, scale, *shift)
    points_ref = np.zeros((68, 2))
    points_ref[list(STABLE_POINTS)] = REFERENCE_STABLE
    t = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    points_ref[48:68] = REFERENCE_MOUTH_CENTRE + np.stack([25 * np.cos(t), 8 * np.sin(t)], axis=1)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    ref = apply(invert(ref_to_frame), np.stack([xx, yy], axis=-1))  # each frame pixel in reference coords
    d = (ref - REFERENCE_MOUTH_CENTRE) / [25.0, 8.0]
    image = np.full((h, w), 200.0)
    image[(d ** 2).sum(-1) <= 1] = 40.0
    image[((ref - REFERENCE_STABLE[0]) ** 2).sum(-1) <= 36] = 120.0
    frame = np.repeat(image[..., None], 3, axis=2).astype(np.uint8)
    return frame, apply(ref_to_frame, points_ref).astype(np.float32)


@pytest.mark.parametrize("angle, scale", [(0.0, 1.0), (15.0, 1.3), (-20.0, 0.6)])
def test_crop_is_aligned_centred_and_derotated(angle: float, scale: float) -> None:
    frame, points = _face_in_frame(angle, scale, (60.0, -40.0))
    crops = crop_mouths(frame[None], points[None], size=96, centre_window=1)
    roi = crops.rois[0].astype(float)
    dark = roi < 120
    ys, xs = np.nonzero(dark)
    # The mouth ellipse is centred and horizontal, at the reference scale (50 x 16 px of 96).
    assert abs(xs.mean() + 0.5 - 48) < 1.0 and abs(ys.mean() + 0.5 - 48) < 1.0
    assert abs((xs.max() - xs.min() + 1) - REFERENCE_MOUTH_WIDTH) <= 3
    assert abs((ys.max() - ys.min() + 1) - 16) <= 3
    # Mouth landmarks re-projected into the crop lie on the ellipse around the centre.
    mouth = apply(crops.transforms[0], points[48:68])
    np.testing.assert_allclose(mouth.mean(0), [48, 48], atol=0.5)


def test_center_crop() -> None:
    rois = np.arange(2 * 96 * 96).reshape(2, 96, 96)
    out = center_crop(rois, 88)
    assert out.shape == (2, 88, 88) and out[0, 0, 0] == rois[0, 4, 4]
    with pytest.raises(ValueError):
        center_crop(rois, 100)


def _check_grid_crops(video_frames: np.ndarray, result, size: int = 96) -> None:
    """The checks that would fail if the crop were off: landmarks and pixels agree with the map."""
    t = video_frames.shape[0]
    assert result.rois.shape == (t, size, size) and result.rois.dtype == np.uint8
    assert result.face_ok.all()
    raw = result.landmarks.points  # detections on each frame (not the smoothed ones)
    mouth = np.stack([apply(m, p[48:68]) for m, p in zip(result.transforms, raw)])
    centre = mouth.mean(1)
    assert np.abs(centre - size / 2).max() < 4.0, "mouth landmarks are not near the crop centre"
    assert mouth.min() > 4 and mouth.max() < size - 4, "mouth landmarks fall outside the crop"
    width = np.linalg.norm(mouth[:, 6] - mouth[:, 0], axis=1)  # corners 54 and 48
    assert (30 < width).all() and (width < 70).all()
    # Photometry: the crop pixel where the map sends a mouth landmark shows the frame's pixel there.
    errors, shifted_errors = [], []
    for frame, m, p, roi in zip(video_frames, result.transforms, raw, result.rois):
        gray = rgb_to_gray(frame, dtype=np.float32)
        src = p[48:68]
        at_frame = map_coordinates(gray, [src[:, 1] - 0.5, src[:, 0] - 0.5], order=1)
        for offset, sink in ((0.0, errors), (8.0, shifted_errors)):
            q = apply(m, src) + [0.0, offset]
            at_roi = map_coordinates(roi.astype(float), [q[:, 1] - 0.5, q[:, 0] - 0.5], order=1)
            sink.append(np.abs(at_roi - at_frame).mean())
    assert np.mean(errors) < 2.0, f"crop pixels do not come from where the map says ({np.mean(errors):.1f})"
    assert np.mean(shifted_errors) > 5 * np.mean(errors)  # the check above can fail


@requires_grid
def test_grid_clip_gives_75_mouth_crops() -> None:
    pytest.importorskip("dlib")
    from avdiff.landmarks import create_detector

    video = read_video(GRID_CLIPS[0])
    result = extract_mouth_rois(video.frames, create_detector("dlib"), size=96)
    assert video.num_frames == 75
    _check_grid_crops(video.frames, result)


@requires_grid
def test_grid_clip_reencoded_at_30fps_gives_duration_times_25_crops(tmp_path: Path) -> None:
    pytest.importorskip("dlib")
    from avdiff.landmarks import create_detector
    from avdiff.media import load_clip

    path = reencode_fps(GRID_CLIPS[2], tmp_path / "clip30.mp4", Fraction(30))
    clip = load_clip(path)
    assert clip.video.source_fps == 30.0 and clip.video.source_frames == 90
    assert clip.num_frames == 75 and clip.audio.shape == (48000,)  # 3 s x 25, 640 samples a frame
    result = extract_mouth_rois(clip.frames, create_detector("dlib"), size=88)
    _check_grid_crops(clip.frames, result, size=88)
    # The 30 fps path shows the same mouth as the 25 fps original, frame for frame.
    original = extract_mouth_rois(read_video(GRID_CLIPS[2]).frames, create_detector("dlib"), size=88)
    diff = np.abs(original.rois.astype(float) - result.rois.astype(float)).mean(axis=(1, 2))
    off_by_one = np.abs(original.rois[1:].astype(float) - result.rois[:-1].astype(float)).mean(axis=(1, 2))
    assert diff.mean() < off_by_one.mean()
