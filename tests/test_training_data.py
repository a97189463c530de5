"""Training data: aligned crops, padding masks, augmentations, and the sharded resumable sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from avdiff.config import AVDiffConfig, load_config
from avdiff.data.crops import AVCropDataset, CropGeometry, collate_crops
from avdiff.data.sampler import ShardedEpochSampler
from tinycorpus import make_tiny_corpus  # noqa: E402  (tests/ is on sys.path)


def config_for(manifest, *overrides):
    return load_config(AVDiffConfig, None, [f"data.train_manifest={manifest}", "data.crop_size=32", *overrides])


def test_crop_geometry_of_the_default_crop():
    geometry = CropGeometry(256)
    assert geometry.audio_samples == 32640  # 255 hops: exactly 256 centred STFT frames
    assert geometry.video_frames == 52  # 51.2 frames of video: the 52nd covers STFT frame 255 only
    assert geometry.stft_per_video_frame == 5
    assert geometry.max_start(75) == 24  # 3 s GRID clip: 376 STFT frames, starts 0..24 fit
    with pytest.raises(ValueError, match="integer number of STFT frames per video frame"):
        CropGeometry(256, sample_rate=16000, hop_length=100)


def dominant_frequency(segment: np.ndarray, rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment)), n=8192))
    return float(np.argmax(spectrum) * rate / 8192)


def test_random_crops_keep_audio_and_video_aligned(tmp_path):
    """In the tone corpus pitch = 300 + 1500 * brightness: check it frame by frame in random crops."""
    manifest = make_tiny_corpus(tmp_path, num_items=3, num_frames=40, size=32)
    config = config_for(manifest, "data.crop_frames=101", "data.hflip_prob=0", "data.time_mask_prob=0")
    dataset = AVCropDataset(manifest, config.data, config.spectrogram, train=True)
    starts = set()
    for seed in range(6):
        crop = dataset[(seed % 3, seed)]
        starts.add(crop["start_frame"])
        audio, video = crop["audio"].numpy(), crop["video"].numpy()
        assert audio.shape == (100 * 128,) and video.shape == (21, 32, 32)
        for frame in range(0, 20, 3):  # video frame j covers samples [640 j, 640 j + 640) of the crop
            expected = 300 + 1500 * video[frame].mean() / 255
            measured = dominant_frequency(audio[640 * frame + 64 : 640 * frame + 576])
            assert measured == pytest.approx(expected, abs=25), (seed, frame)
    assert len(starts) > 1  # the crops really are random


def test_short_clips_are_padded_with_masks(tmp_path):
    manifest = make_tiny_corpus(tmp_path, num_items=1, num_frames=10, size=32)
    config = config_for(manifest, "data.crop_frames=64")
    crop = AVCropDataset(manifest, config.data, config.spectrogram, train=True)[(0, 1)]
    assert crop["start_frame"] == 0
    assert crop["frame_mask"].sum() == 51  # 5 * 10 + 1 STFT frames of a 10-frame clip
    assert crop["video_valid"].sum() == 10 and crop["video"].shape[0] == 13
    assert not crop["face_ok"][10:].any()
    assert torch.all(crop["audio"][10 * 640 :] == 0)


def test_augmentations_are_deterministic_per_seed_and_eval_has_none(tmp_path):
    manifest = make_tiny_corpus(tmp_path, num_items=2, num_frames=30, size=40)
    config = config_for(manifest, "data.crop_frames=64", "data.hflip_prob=1.0", "data.time_mask_prob=1.0")
    train = AVCropDataset(manifest, config.data, config.spectrogram, train=True)
    a, b = train[(1, 123)], train[(1, 123)]
    assert torch.equal(a["video"], b["video"]) and torch.equal(a["audio"], b["audio"])
    masked = [(frame == round(0.421 * 255)).all().item() for frame in a["video"][a["video_valid"]]]
    assert any(masked)  # one span set to the mean pixel
    evaluation = AVCropDataset(manifest, config.data, config.spectrogram, train=False)
    e = evaluation[1]
    assert e["start_frame"] == 0 and e["video"].shape[-1] == 32
    raw = np.load(tmp_path / "item001.npy")
    assert torch.equal(e["video"][0], torch.from_numpy(raw[0, 4:36, 4:36]))  # centre crop, no flip


def test_sampler_shards_are_disjoint_equal_and_resumable():
    samplers = [ShardedEpochSampler(11, seed=3, rank=r, world_size=3) for r in range(3)]
    shards = [[index for index, _ in sampler] for sampler in samplers]
    assert all(len(shard) == 3 for shard in shards)  # 11 // 3, the tail dropped
    assert not set(shards[0]) & set(shards[1]) and not set(shards[1]) & set(shards[2])
    full = list(samplers[1])
    samplers[1].set_position(0, 2)
    assert list(samplers[1]) == full[2:]  # resuming continues exactly
    samplers[1].set_position(1)
    assert [i for i, _ in samplers[1]] != shards[1]  # a new epoch has a new order


def test_loader_batches_do_not_depend_on_worker_count(tmp_path):
    manifest = make_tiny_corpus(tmp_path, num_items=6, num_frames=30, size=32)
    config = config_for(manifest, "data.crop_frames=64")
    dataset = AVCropDataset(manifest, config.data, config.spectrogram, train=True)

    def batches(workers):
        sampler = ShardedEpochSampler(len(dataset), seed=5)
        loader = DataLoader(dataset, batch_size=2, sampler=sampler, collate_fn=collate_crops, num_workers=workers)
        return list(loader)

    for a, b in zip(batches(0), batches(2)):
        assert a["id"] == b["id"] and torch.equal(a["video"], b["video"]) and torch.equal(a["audio"], b["audio"])


def test_bad_data_gives_clear_errors(tmp_path):
    manifest = make_tiny_corpus(tmp_path, num_items=1, num_frames=10, size=32)
    config = config_for(manifest, "data.crop_frames=64", "data.crop_size=88")
    with pytest.raises(Exception, match="smaller than data.crop_size=88"):
        AVCropDataset(manifest, config.data, config.spectrogram)[(0, 0)]
    import soundfile as sf

    sf.write(tmp_path / "item000.wav", np.zeros((6400, 2), dtype=np.float32), 16000)
    config = config_for(manifest, "data.crop_frames=64")
    with pytest.raises(Exception, match="expected 16000 Hz mono, got 16000 Hz with 2 channels"):
        AVCropDataset(manifest, config.data, config.spectrogram)[(0, 0)]


def test_manifests_take_absolute_and_relative_paths(tmp_path):
    """Paths written by hand or by other tools are absolute; `prepare` writes relative ones. Both
    name the same files, so the same crops come out; relative ones follow the manifest's folder."""
    import json

    from avdiff.data.manifest import read_manifest

    manifest = make_tiny_corpus(tmp_path / "corpus", num_items=2, num_frames=20, size=32)
    items = read_manifest(manifest)
    absolute = tmp_path / "elsewhere" / "absolute.jsonl"
    absolute.parent.mkdir()
    absolute.write_text("".join(json.dumps({**item, "audio": str(manifest.parent / item["audio"]),
                                            "video": str(manifest.parent / item["video"])}) + "\n"
                                for item in items))
    config = config_for(manifest, "data.crop_frames=16")
    relative_crop = AVCropDataset(manifest, config.data, config.spectrogram, train=False)[(1, 0)]
    absolute_crop = AVCropDataset(absolute, config.data, config.spectrogram, train=False)[(1, 0)]
    assert torch.equal(relative_crop["audio"], absolute_crop["audio"])
    assert torch.equal(relative_crop["video"], absolute_crop["video"])
    moved = tmp_path / "moved"
    (tmp_path / "corpus").rename(moved)  # a relative manifest moves with its folder
    moved_crop = AVCropDataset(moved / manifest.name, config.data, config.spectrogram, train=False)[(1, 0)]
    assert torch.equal(relative_crop["audio"], moved_crop["audio"])
