"""Lips that name the phonemes: per-frame phone labels from a corpus's alignments, the phone loss on
the lips' channels after the envelope's, and its place in the recipe (configs/v2s-lips-context-cpu)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from avdiff.config import AVDiffConfig, load_config
from avdiff.data.crops import AVCropDataset, collate_crops
from avdiff.data.phone_labels import IGNORE_INDEX, PHONE_CLASSES, frame_phones, phone_class
from avdiff.diffusion.formulation import build_formulation
from avdiff.errors import ConfigError, InputError
from avdiff.training.model import AVDiffusionModel
from avdiff.training.trainer import train
from test_two_stage import SMALL_RUN  # tests/ is on sys.path
from tinycorpus import make_tiny_corpus

FRAMES = 12
# phoneme times of every tiny clip: "b" over frames 1-2, a pause, "'i:" (stressed) over frames 4-7, then "zz" (unknown)
PHONEMES = [["b", 0.04, 0.12], ["_", 0.12, 0.16], ["'i:", 0.16, 0.32], ["zz", 0.32, 0.36]]


def with_alignments(manifest: Path) -> Path:
    """Write alignments.jsonl (PHONEMES for every item) beside `manifest`; returns the manifest."""
    ids = [json.loads(line)["id"] for line in manifest.read_text().splitlines()]
    rows = [json.dumps({"id": item, "words": [], "phonemes": PHONEMES}) for item in ids]
    (manifest.parent / "alignments.jsonl").write_text("\n".join(rows) + "\n")
    return manifest


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return with_alignments(make_tiny_corpus(tmp_path_factory.mktemp("phones") / "data", num_items=8,
                                            num_frames=FRAMES, size=32))


def test_each_frame_gets_the_phoneme_at_its_centre():
    b, ee = PHONE_CLASSES.index("b"), PHONE_CLASSES.index("i:")
    assert phone_class("'i:") == ee and phone_class("_") == 0 and phone_class("zz") == IGNORE_INDEX
    labels = frame_phones([tuple(p) for p in PHONEMES], start_frame=0, frames=FRAMES, clip_frames=FRAMES)
    assert labels.tolist() == [0, b, b, 0, ee, ee, ee, ee, IGNORE_INDEX, 0, 0, 0]
    # a crop from frame 3 of a 12-frame clip, 12 frames long: the last 3 lie past the clip
    shifted = frame_phones([tuple(p) for p in PHONEMES], start_frame=3, frames=FRAMES, clip_frames=FRAMES)
    assert shifted.tolist() == [*labels[3:].tolist(), IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]
    assert (frame_phones(None, 0, 4, 4) == IGNORE_INDEX).all()  # an item the alignments do not list


def test_training_crops_carry_the_phonemes_of_their_own_frames(corpus):
    config = load_config(AVDiffConfig, None, [f"data.train_manifest={corpus}", *SMALL_RUN, "data.crop_frames=31"])
    dataset = AVCropDataset(corpus, config.data, config.spectrogram, train=True, phone_labels=True)
    crops = [dataset[0, seed] for seed in range(6)]
    padded = frame_phones([tuple(p) for p in PHONEMES], 0, FRAMES, FRAMES).tolist() + [IGNORE_INDEX] * 7
    for crop in crops:
        start = crop["start_frame"]
        assert crop["phones"].tolist() == padded[start : start + 7]  # (31 - 1) // 5 + 1 = 7 frames
    assert {crop["start_frame"] for crop in crops} != {0}  # random starts were drawn
    assert collate_crops(crops)["phones"].shape == (6, 7)
    assert "phones" not in AVCropDataset(corpus, config.data, config.spectrogram)[0]


def test_the_phone_loss_counts_only_usable_frames_it_can_name(corpus):
    config = load_config(AVDiffConfig, None, [f"data.train_manifest={corpus}", *SMALL_RUN, "training.phone_loss_weight=1"])
    model = AVDiffusionModel.from_config(config, build_formulation(config.diffusion, sigma_data=0.1))
    embeddings = torch.randn(2, FRAMES, config.lip_encoder.output_dim)
    phones = torch.from_numpy(np.stack([frame_phones([tuple(p) for p in PHONEMES], 0, FRAMES, FRAMES)] * 2))
    usable = torch.ones(2, FRAMES, dtype=torch.bool)
    whole = model.phone_loss(embeddings, phones, usable)
    logits = model.phone_head(embeddings[..., 8:])
    kept = phones != IGNORE_INDEX
    expected = torch.nn.functional.cross_entropy(logits[kept], phones[kept])
    torch.testing.assert_close(whole, expected)
    usable[:, :4] = False  # no face on the first four frames: their labels do not count
    kept[:, :4] = False
    torch.testing.assert_close(model.phone_loss(embeddings, phones, usable),
                               torch.nn.functional.cross_entropy(logits[kept], phones[kept]))
    assert float(model.phone_loss(embeddings, phones, torch.zeros_like(usable)).detach()) == 0.0
    assert model.phone_loss(embeddings, None, usable) is None


def test_the_phone_loss_trains_the_channels_after_the_envelope(corpus, tmp_path):
    """Stage 1 without a phone loss leaves the output rows after the envelope's as initialised (nothing
    reads them); with one they learn, and validation reports the phone loss."""
    rows = {}
    for weight in (0.0, 1.0):
        config = load_config(AVDiffConfig, None, [
            f"data.train_manifest={corpus}", *SMALL_RUN, "training.objective=lips", "training.learning_rate=1e-2",
            f"training.phone_loss_weight={weight}", f"data.valid_manifest={corpus}", "training.validate_every=2",
            "training.validation_batches=1", "training.validation_samples=0", "training.ema_decay=0"])
        model_dir = train(config, tmp_path / f"w{weight}", max_steps=2, cpu=True).model_dir
        rows[weight] = load_file(str(model_dir / "lip_encoder" / "diffusion_pytorch_model.safetensors"))
        log = (model_dir.parent / "train.log").read_text()
        assert ("phones" in log.split("validation")[-1]) == bool(weight), log
    torch.manual_seed(0)  # as the trainer seeds before building the model
    initial = AVDiffusionModel.from_config(config, build_formulation(config.diffusion, sigma_data=0.1))
    start = initial.lip_encoder.state_dict()["output_proj.weight"]
    assert torch.equal(rows[0.0]["output_proj.weight"][8:], start[8:])
    assert not torch.equal(rows[1.0]["output_proj.weight"][8:], start[8:])
    assert set(rows[1.0]) == set(initial.lip_encoder.state_dict())  # the head trains beside the lips, not in them


def test_bad_phone_settings_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="phone_loss_weight"):
        load_config(AVDiffConfig, None, ["training.phone_loss_weight=1", "lip_encoder.train=false"])
    with pytest.raises(ConfigError, match="phone_loss_weight"):
        load_config(AVDiffConfig, None, ["training.phone_loss_weight=1", "lip_encoder.envelope_bands=64",
                                         "score_model.unet.cond_envelope_bands=64"])
    with pytest.raises(ConfigError, match="phone_loss_weight"):
        load_config(AVDiffConfig, None, ["training.phone_loss_weight=-1"])
    manifest = make_tiny_corpus(tmp_path / "data", num_items=2, num_frames=FRAMES, size=32)
    config = load_config(AVDiffConfig, None, [f"data.train_manifest={manifest}", *SMALL_RUN])
    with pytest.raises(InputError, match="alignments.jsonl"):
        AVCropDataset(manifest, config.data, config.spectrogram, phone_labels=True)


def test_the_context_recipe_names_phonemes_on_stage_ones_frozen_front_end_and_its_cached_features():
    config = load_config(AVDiffConfig, "v2s-lips-context-cpu", [])
    first = load_config(AVDiffConfig, "v2s-lips-cpu", [])
    assert config.training.objective == "lips" and config.training.phone_loss_weight > 0
    assert config.lip_encoder.preset == "small-context" and config.lip_encoder.freeze_frontend
    assert config.lip_encoder.pretrained_frontend.startswith("runs/v2s-lips")
    assert first.data.train_manifest in config.data.train_manifest  # stage 1's faces, and more
    assert config.training.cache_frontend_features  # the frozen front-end runs once per clip
    assert config.data.crop_frames >= 5 * 88 + 1  # whole clips of the corpus (its longest is 88 frames)
