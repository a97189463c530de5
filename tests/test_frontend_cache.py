"""training.cache_frontend_features: a frozen front-end's features computed once per clip train the
temporal part as the pixels would, and the cache is reused, rebuilt when stale, never read half-written."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from avdiff.config import AVDiffConfig, load_config
from avdiff.data.crops import AVCropDataset
from avdiff.data.frontend_cache import frontend_cache
from avdiff.errors import ConfigError
from avdiff.models.lip_encoder import LipEncoder
from avdiff.training.trainer import FRONTEND_CACHE_DIR, train
from tinycorpus import make_tiny_corpus  # tests/ is on sys.path

FRAMES = 12
WHOLE_CLIP = f"data.crop_frames={5 * FRAMES + 1}"  # every crop is the whole clip: no crop edge differs
LIPS_RUN = [
    WHOLE_CLIP, "data.crop_size=32", "data.num_workers=0", "data.random_crop=false", "data.time_mask_prob=0",
    "data.hflip_prob=0.5", "training.batch_size=4", "training.validate_every=0", "training.checkpoint_every=1000",
    "training.objective=lips", "training.learning_rate=1e-2", "lip_encoder.freeze_frontend=true",
    "lip_encoder.envelope_bands=8", "score_model.unet.cond_envelope_bands=8",
    "score_model.unet.block_out_channels=[8,16]", "score_model.unet.attention_levels=[false,false]",
    "score_model.unet.norm_num_groups=4", "score_model.unet.attention_head_dim=8",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Eight clips whose mouths are textured, so a mirrored clip's features differ from the clip's."""
    folder = tmp_path_factory.mktemp("cache-corpus")
    manifest = make_tiny_corpus(folder, num_items=8, num_frames=FRAMES, size=32)
    rng = np.random.default_rng(3)
    for path in sorted(folder.glob("*.npy")):
        np.save(path, rng.integers(0, 256, size=(FRAMES, 32, 32), dtype=np.uint8))
    return manifest


def lips_config(manifest: Path, cached: bool, *more: str) -> AVDiffConfig:
    return load_config(AVDiffConfig, None, [f"data.train_manifest={manifest}", *LIPS_RUN,
                                            f"training.cache_frontend_features={str(cached).lower()}", *more])


def test_features_in_place_of_crops_give_the_same_embeddings(corpus):
    encoder = LipEncoder.from_preset("tiny").eval()
    video = torch.randint(0, 256, (2, FRAMES, 32, 32), dtype=torch.uint8)
    mask = torch.ones(2, FRAMES, dtype=torch.bool)
    mask[1, 9:] = False
    with torch.no_grad():
        torch.testing.assert_close(encoder(encoder.frontend_features(video, mask), mask), encoder(video, mask))
    with pytest.raises(ValueError, match="front-end features"):
        encoder(torch.zeros(2, FRAMES, 7))


def test_the_lips_train_the_same_on_cached_features_as_on_pixels(corpus, tmp_path):
    """Two steps of the lips stage, mirrored clips included: equal weights, and the cache was written."""
    trained = {}
    for cached in (False, True):
        model_dir = train(lips_config(corpus, cached), tmp_path / str(cached), max_steps=2, cpu=True).model_dir
        trained[cached] = load_file(str(model_dir / "lip_encoder" / "diffusion_pytorch_model.safetensors"))
    untouched = LipEncoder.from_preset("tiny")
    assert any(not torch.equal(trained[True][name], value) for name, value in untouched.state_dict().items()
               if name.startswith("temporal."))
    for name, value in trained[False].items():
        torch.testing.assert_close(trained[True][name], value, rtol=1e-4, atol=1e-5, msg=name)
    assert len(list((tmp_path / "True" / FRONTEND_CACHE_DIR).iterdir())) == 1
    assert not (tmp_path / "False" / FRONTEND_CACHE_DIR).exists()


def test_the_cache_is_reused_rebuilt_when_stale_and_never_read_half_written(corpus, tmp_path):
    config = lips_config(corpus, True)
    dataset = AVCropDataset(corpus, config.data, config.spectrogram, train=True)
    encoder = LipEncoder.from_preset("tiny", freeze_frontend=True)
    first = frontend_cache(encoder, dataset, tmp_path, torch.device("cpu"))
    assert first.clip(0, False).shape == (FRAMES, encoder.frontend.out_channels)
    assert not np.allclose(first.clip(0, False), first.clip(0, True))
    stamp = (first.folder / "features.npy").stat().st_mtime_ns
    again = frontend_cache(encoder, dataset, tmp_path, torch.device("cpu"), build=False)
    assert again.folder == first.folder and (again.folder / "features.npy").stat().st_mtime_ns == stamp
    with torch.no_grad():
        encoder.frontend.frontend3D[0].weight.mul_(2.0)
    changed = frontend_cache(encoder, dataset, tmp_path, torch.device("cpu"))
    assert changed.folder != first.folder and not np.allclose(changed.clip(0, False), first.clip(0, False))
    shutil.rmtree(changed.folder)  # as a run killed while writing leaves it: only the partial folder
    shutil.copytree(first.folder, changed.folder.with_name(changed.folder.name + ".partial"))
    with pytest.raises(FileNotFoundError, match="no front-end feature cache"):
        frontend_cache(encoder, dataset, tmp_path, torch.device("cpu"), build=False)
    rebuilt = frontend_cache(encoder, dataset, tmp_path, torch.device("cpu"))
    np.testing.assert_array_equal(rebuilt.clip(3, True), changed.clip(3, True))
    assert not rebuilt.folder.with_name(rebuilt.folder.name + ".partial").exists()


def test_a_resumed_run_reads_its_cache_back(corpus, tmp_path):
    config = lips_config(corpus, True, "training.checkpoint_every=1")
    train(config, tmp_path, max_steps=1, cpu=True)
    train(config, tmp_path, max_steps=2, resume="latest", cpu=True)
    log = (tmp_path / "train.log").read_text()
    assert len(re.findall("caching the front-end's features of 8 clips", log)) == 1
    assert len(re.findall("reading the front-end's features of 8 clips", log)) == 1


def test_a_run_reads_back_the_cache_another_run_computed(corpus, tmp_path):
    """training.frontend_cache_dir: a later stage on the same front-end and clips computes nothing again."""
    train(lips_config(corpus, True), tmp_path / "first", max_steps=1, cpu=True)
    shared = f"training.frontend_cache_dir={tmp_path / 'first' / FRONTEND_CACHE_DIR}"
    train(lips_config(corpus, True, shared), tmp_path / "second", max_steps=1, cpu=True)
    assert "reading the front-end's features of 8 clips" in (tmp_path / "second" / "train.log").read_text()
    assert "caching" not in (tmp_path / "second" / "train.log").read_text()
    assert not (tmp_path / "second" / FRONTEND_CACHE_DIR).exists()


@pytest.mark.parametrize("setting, message", [
    ("lip_encoder.freeze_frontend=false", "lip_encoder.freeze_frontend true"),
    ("data.random_crop=true", "set data.random_crop"),
    ("data.time_mask_prob=0.5", "set data.time_mask_prob"),
    ("data.geometric_jitter=0.1", "set data.geometric_jitter"),
])
def test_a_cache_beside_what_it_cannot_hold_is_a_config_error(corpus, setting, message):
    with pytest.raises(ConfigError, match=message):
        lips_config(corpus, True, setting)
    lips_config(corpus, False, setting)  # without the cache each setting is fine


def test_a_re_prepared_clip_makes_a_new_cache(corpus, tmp_path):
    """The digest covers each mouth-crop file, so features are never read for crops they were not made of."""
    copy = tmp_path / "corpus"
    shutil.copytree(corpus.parent, copy)
    config = lips_config(copy / corpus.name, True)
    dataset = AVCropDataset(copy / corpus.name, config.data, config.spectrogram, train=True)
    encoder = LipEncoder.from_preset("tiny", freeze_frontend=True)
    first = frontend_cache(encoder, dataset, tmp_path / "cache", torch.device("cpu"))
    np.save(copy / "item002.npy", np.full((FRAMES + 2, 32, 32), 7, dtype=np.uint8))  # re-prepared, longer
    again = frontend_cache(encoder, dataset, tmp_path / "cache", torch.device("cpu"))
    assert again.folder != first.folder
    assert again.clip(2, False).shape[0] == FRAMES + 2 and first.clip(2, False).shape[0] == FRAMES
    np.testing.assert_array_equal(again.clip(1, True), first.clip(1, True))
