"""Per-clip jitter of mouth crops in training (avdiff/data/video_jitter.py): one transform per clip,
the frames inside the clip only, reproducible per crop seed, refused out of range."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avdiff.config import AVDiffConfig, load_config
from avdiff.data.crops import AVCropDataset
from avdiff.data.video_jitter import jitter_exposure, jitter_geometry
from tinycorpus import make_tiny_corpus  # noqa: E402  (tests/ is on sys.path)


def mouth_clip(frames: int = 6, size: int = 40) -> np.ndarray:
    """A dark bar (a mouth) whose height changes frame by frame on a textured face."""
    rng = np.random.default_rng(0)
    face = rng.integers(90, 160, (size, size)).astype(np.uint8)
    clip = np.repeat(face[None], frames, axis=0)
    for t in range(frames):
        clip[t, 18 - t // 2 : 22 + t // 2, 10:30] = 20
    return clip


def test_geometric_jitter_moves_every_frame_alike():
    clip = mouth_clip()
    moved = jitter_geometry(clip, 0.1, np.random.default_rng(3))
    assert moved.shape == clip.shape and moved.dtype == np.uint8
    assert np.abs(moved.astype(int) - clip).mean() > 3  # the picture moved
    static = np.repeat(clip[:1], 6, axis=0)  # the same frame six times: still six equal frames after
    again = jitter_geometry(static, 0.1, np.random.default_rng(3))
    assert all(np.array_equal(again[0], frame) for frame in again)
    assert np.array_equal(jitter_geometry(clip, 0.0, np.random.default_rng(3)), clip)
    nearly = jitter_geometry(clip, 1e-6, np.random.default_rng(3))  # a near-identity transform
    assert np.abs(nearly.astype(int) - clip).max() <= 1


def test_exposure_jitter_changes_level_and_contrast_alike_on_every_frame():
    clip = mouth_clip()
    changed = jitter_exposure(clip, 0.2, np.random.default_rng(1))
    differences = changed.astype(float) - clip
    assert abs(differences.mean()) > 1 and changed.min() >= 0 and changed.max() <= 255
    fitted = [np.polyfit(clip[t].ravel(), changed[t].ravel(), 1) for t in range(len(clip))]
    assert np.ptp([slope for slope, _ in fitted]) < 1e-3  # one contrast for the whole clip
    assert np.array_equal(jitter_exposure(clip, 0.0, np.random.default_rng(1)), clip)


def test_training_crops_jitter_inside_the_clip_only_and_reproducibly(tmp_path):
    manifest = make_tiny_corpus(tmp_path, num_items=1, num_frames=10, size=32)
    base = [f"data.train_manifest={manifest}", "data.crop_size=32", "data.crop_frames=64",
            "data.hflip_prob=0", "data.time_mask_prob=0"]
    plain = load_config(AVDiffConfig, None, base)
    jittered = load_config(AVDiffConfig, None, [*base, "data.geometric_jitter=0.1", "data.exposure_jitter=0.15"])
    spec = plain.spectrogram
    a = AVCropDataset(manifest, jittered.data, spec, train=True)[(0, 7)]
    b = AVCropDataset(manifest, jittered.data, spec, train=True)[(0, 7)]
    reference = AVCropDataset(manifest, plain.data, spec, train=True)[(0, 7)]
    assert torch.equal(a["video"], b["video"]) and torch.equal(a["audio"], reference["audio"])
    assert not torch.equal(a["video"][:10], reference["video"][:10])
    assert torch.all(a["video"][10:] == 0)  # padding past the clip stays padding
    evaluation = AVCropDataset(manifest, jittered.data, spec, train=False)[0]
    assert torch.equal(evaluation["video"], AVCropDataset(manifest, plain.data, spec, train=False)[0]["video"])
    with pytest.raises(ValueError, match="geometric_jitter"):
        load_config(AVDiffConfig, None, [*base, "data.geometric_jitter=0.8"])
