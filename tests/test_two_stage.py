"""The two-stage video-to-speech recipe: the lips learn the envelope alone, then the score network
learns on them, frozen, reading an envelope corrupted as the lips err (in training only)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from avdiff.config import AVDiffConfig, load_config
from avdiff.diffusion.formulation import build_formulation, load_formulation
from avdiff.errors import ConfigError
from avdiff.training.envelope_corruption import corrupt_envelope
from avdiff.training.model import AVDiffusionModel
from avdiff.training.trainer import train
from tinycorpus import make_tiny_corpus  # tests/ is on sys.path

REPO_ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = "diffusion_pytorch_model.safetensors"
SMALL_RUN = [
    "data.crop_frames=32", "data.crop_size=32", "data.num_workers=0", "data.hflip_prob=0", "training.batch_size=4",
    "training.validate_every=0", "training.checkpoint_every=1000", "training.sigma_data_batches=1",
    "lip_encoder.envelope_bands=8", "score_model.unet.cond_envelope_bands=8",
    "score_model.unet.block_out_channels=[8,16]", "score_model.unet.attention_levels=[false,false]",
    "score_model.unet.norm_num_groups=4", "score_model.unet.attention_head_dim=8",
]


def weights(model_dir: Path, component: str) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / component / WEIGHTS))


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    return {name for name in before if not torch.equal(before[name], after[name])}


@pytest.fixture(scope="module")
def stages(tmp_path_factory) -> tuple[Path, Path, AVDiffusionModel]:
    """Stage 1 (3 steps of the lips alone) and stage 2 (3 steps on them, frozen): the two model folders,
    and stage 1's model as its seed initialises it (what training starts from)."""
    root = tmp_path_factory.mktemp("two-stage")
    manifest = make_tiny_corpus(root / "data", num_items=8, num_frames=12, size=32)
    common = [f"data.train_manifest={manifest}", *SMALL_RUN]
    lips = load_config(AVDiffConfig, None, [*common, "training.objective=lips", "training.learning_rate=1e-2",
                                            f"data.valid_manifest={manifest}", "training.validate_every=2",
                                            "training.validation_batches=1", "training.validation_samples=0"])
    first = train(lips, root / "lips", max_steps=3, cpu=True).model_dir
    torch.manual_seed(lips.training.seed)  # as the trainer does before building the model
    untrained = AVDiffusionModel.from_config(lips, build_formulation(lips.diffusion, sigma_data=0.1))
    score = load_config(AVDiffConfig, None, [*common, f"lip_encoder.pretrained={first}", "lip_encoder.train=false",
                                             "training.envelope_noise_std=0.2", "training.envelope_blur_prob=0.5"])
    second = train(score, root / "score", max_steps=3, cpu=True).model_dir
    return first, second, untrained


def test_the_first_stage_trains_the_lips_alone(stages):
    """...and validates them (the envelope error; with the faces masked there is nothing to score)."""
    first, _, untrained = stages
    log = (first.parent / "train.log").read_text()
    assert re.search(r"step 2: validation loss_av [\d.]+, loss_audio_only 0\.0000, envelope [\d.]+", log), log
    assert changed(untrained.score_model.state_dict(), weights(first, "score_model")) == set()
    assert changed(untrained.lip_encoder.state_dict(), weights(first, "lip_encoder"))


def test_the_second_stage_keeps_the_lips_frozen_and_trains_the_score_network(stages):
    first, second, _ = stages
    # BatchNorm statistics included: a frozen encoder stays in eval mode while the rest trains.
    assert changed(weights(first, "lip_encoder"), weights(second, "lip_encoder")) == set()
    assert changed(weights(first, "score_model"), weights(second, "score_model"))


def test_a_second_stage_can_start_from_a_trained_score_network(stages, tmp_path):
    """score_model.pretrained (new lips under a trained network): training starts from its weights and
    denoises on its sigma_data; a network or a scale that differs is a clear ConfigError."""
    first, second, _ = stages
    manifest = make_tiny_corpus(tmp_path / "data", num_items=4, num_frames=12, size=32)
    settings = [f"data.train_manifest={manifest}", *SMALL_RUN, f"lip_encoder.pretrained={first}",
                "lip_encoder.train=false", f"score_model.pretrained={second}"]
    config = load_config(AVDiffConfig, None, settings)
    theirs = load_formulation(second / "diffusion").sigma_data
    model = AVDiffusionModel.from_config(config, build_formulation(config.diffusion, sigma_data=theirs))
    assert changed(weights(second, "score_model"), model.score_model.state_dict()) == set()
    tuned = train(config, tmp_path / "tuned", max_steps=1, cpu=True).model_dir
    assert load_formulation(tuned / "diffusion").sigma_data == pytest.approx(theirs)
    with pytest.raises(ConfigError, match="score_model.pretrained: its formulation"):
        AVDiffusionModel.from_config(config, build_formulation(config.diffusion, sigma_data=2 * theirs))
    wider = load_config(AVDiffConfig, None, [*settings, "score_model.unet.block_out_channels=[8,24]"])
    with pytest.raises(ConfigError, match="score_model.pretrained: the score_model section does not describe"):
        AVDiffusionModel.from_config(wider, build_formulation(config.diffusion, sigma_data=theirs))
    with pytest.raises(ConfigError, match="score_model.pretrained"):
        load_config(AVDiffConfig, None, [*settings, "training.objective=vae"])


def test_the_envelope_is_corrupted_in_training_only(tmp_path):
    embeddings = torch.randn(2, 6, 10)
    generator = torch.Generator().manual_seed(0)
    assert corrupt_envelope(embeddings, 4, 0.0, 0.0, generator) is embeddings
    noisy = corrupt_envelope(embeddings, 4, 0.5, 0.0, generator)
    assert torch.equal(noisy[..., 4:], embeddings[..., 4:]) and not torch.equal(noisy[..., :4], embeddings[..., :4])
    blurred = corrupt_envelope(embeddings, 4, 0.0, 1.0, generator)
    np.testing.assert_allclose(blurred[:, 2, :4], embeddings[:, 1:4, :4].mean(1), rtol=1e-6)
    np.testing.assert_allclose(blurred[:, 0, :4], embeddings[:, 0:2, :4].mean(1), rtol=1e-6)  # the edge: 2 frames

    manifest = make_tiny_corpus(tmp_path / "data", num_items=2, num_frames=12, size=32)
    losses = {}
    for noise in (0.0, 5.0):
        config = load_config(AVDiffConfig, None, [f"data.train_manifest={manifest}", *SMALL_RUN,
                                                  f"training.envelope_noise_std={noise}"])
        torch.manual_seed(0)
        model = AVDiffusionModel.from_config(config, build_formulation(config.diffusion, sigma_data=0.1))
        batch = [torch.randn(2, 12 * 640) * 0.1, torch.randint(0, 255, (2, 12, 32, 32), dtype=torch.uint8),
                 torch.ones(2, 12, dtype=torch.bool), torch.ones(2, 12, dtype=torch.bool), torch.ones(2, 61, dtype=torch.bool)]
        for dropping in (False, True):
            losses[noise, dropping] = float(model(*batch, torch.Generator().manual_seed(1), drop_conditions=dropping).loss.detach())
    assert losses[0.0, False] == losses[5.0, False]  # validation: the lips' own envelope
    assert losses[0.0, True] != losses[5.0, True]  # training: the corrupted one


def test_bad_two_stage_settings_are_clear_config_errors(stages, tmp_path):
    first, _, _ = stages
    with pytest.raises(ConfigError, match="envelope_bands > 0"):
        load_config(AVDiffConfig, None, ["training.objective=lips"])
    with pytest.raises(ConfigError, match="lip_encoder.train true"):
        load_config(AVDiffConfig, None, ["training.objective=lips", "lip_encoder.envelope_bands=8",
                                         "score_model.unet.cond_envelope_bands=8", "lip_encoder.train=false"])
    for pretrained, message in ((tmp_path, "holds no lip encoder"), (first, "has envelope_bands 8")):
        config = load_config(AVDiffConfig, None, [f"lip_encoder.pretrained={pretrained}",
                                                  "lip_encoder.envelope_bands=4", "score_model.unet.cond_envelope_bands=4"])
        with pytest.raises(ConfigError, match=message):
            AVDiffusionModel.from_config(config, build_formulation(config.diffusion, sigma_data=0.1))


def test_the_recipes_chain_their_stages():
    """v2s-score-cpu starts from what v2s-lips-cpu writes, with its architecture, frozen."""
    lips = load_config(AVDiffConfig, "v2s-lips-cpu", [])
    score = load_config(AVDiffConfig, "v2s-score-cpu", [])
    assert lips.training.objective == "lips" and lips.lip_encoder.train and not lips.lip_encoder.pretrained
    assert score.training.objective == "joint" and not score.lip_encoder.train
    assert score.lip_encoder.pretrained == "runs/v2s-lips/model" and score.lip_encoder.preset == lips.lip_encoder.preset
    assert score.training.envelope_noise_std > 0 and lips.lip_encoder.envelope_bands == score.lip_encoder.envelope_bands


def card_training_commands(model: str) -> list[tuple[str, str]]:
    """The (config, output dir) of every `avdiff train` command of a model card, in order."""
    card = (REPO_ROOT / "models" / model / "README.md").read_text()
    return re.findall(r"avdiff train --config (\S+) --output-dir (\S+)", card)


@pytest.mark.parametrize("model", ["v2s", "v2s-context"])
def test_the_model_cards_training_commands_chain_as_their_configs_say(model):
    """Every `avdiff train --config C --output-dir D` of the model card names a config that loads,
    and a config that starts from trained weights or cached features names what an earlier
    command of the card wrote: the card's recipe runs from nothing."""
    trains = card_training_commands(model)
    assert trains
    written: list[Path] = []
    for config_name, output_dir in trains:
        config = load_config(AVDiffConfig, config_name, [])
        if config.lip_encoder.pretrained:
            assert Path(config.lip_encoder.pretrained) in written, (config_name, config.lip_encoder.pretrained)
        if config.lip_encoder.pretrained_frontend:
            frontend = Path(config.lip_encoder.pretrained_frontend)
            assert any(frontend.is_relative_to(folder) for folder in written), (config_name, frontend)
        if config.training.frontend_cache_dir:  # another stage's cache: that stage ran before
            assert Path(config.training.frontend_cache_dir).parent in [folder.parent for folder in written]
        written.append(Path(output_dir) / "model")


def test_the_budget_recipe_chains_its_three_stages():
    """The front-end of stage 1, frozen under stage 1b's temporal part, then a new score network on
    whole clips reading stage 1b's lips and its cache of the front-end's features."""
    lips = load_config(AVDiffConfig, "v2s-budget-lips-cpu", [])
    context = load_config(AVDiffConfig, "v2s-budget-context-cpu", [])
    score = load_config(AVDiffConfig, "v2s-budget-score-cpu", [])
    assert lips.training.objective == context.training.objective == "lips" and score.training.objective == "joint"
    assert context.lip_encoder.pretrained_frontend.startswith("runs/v2s-budget-lips/model/")
    assert context.lip_encoder.freeze_frontend and context.training.cache_frontend_features
    assert score.lip_encoder.pretrained == "runs/v2s-budget-context/model" and not score.lip_encoder.train
    assert score.score_model.pretrained is None and score.training.frontend_cache_dir.startswith("runs/v2s-budget-context/")
    assert score.data.crop_frames == context.data.crop_frames and score.data.train_manifest == context.data.train_manifest



def test_the_fast_weight_adds_the_error_of_the_envelopes_movements_only(tmp_path):
    """With training.envelope_fast_weight the lips' error counts its fast part again: an error that
    flickers frame to frame costs more, an error that is the same on every frame costs the same."""
    manifest = make_tiny_corpus(tmp_path / "data", num_items=2, num_frames=12, size=32)
    usable, frame_mask = torch.ones(2, 12, dtype=torch.bool), torch.ones(2, 61, dtype=torch.bool)
    flicker = torch.tensor([0.5, -0.5]).repeat(6)[None, :, None]  # (1, 12, 1): +-0.5 on alternate frames
    errors = {}
    for weight in (0.0, 2.0):
        config = load_config(AVDiffConfig, None, [f"data.train_manifest={manifest}", *SMALL_RUN,
                                                  f"training.envelope_fast_weight={weight}"])
        model = AVDiffusionModel.from_config(config, build_formulation(config.diffusion, sigma_data=0.1))
        spec = model.transform.encode(torch.randn(2, 12 * 640) * 0.1)
        target, _ = model.envelope_target(spec, frame_mask, 12)
        for name, wrong in (("offset", 0.5 + 0 * flicker), ("flicker", flicker)):
            embeddings = torch.zeros(2, 12, config.lip_encoder.output_dim)
            embeddings[..., :8] = target + wrong
            errors[weight, name] = model.envelope_errors(spec, embeddings, usable, frame_mask)[0]
    torch.testing.assert_close(errors[0.0, "offset"], torch.full((2, 12), 0.25))
    torch.testing.assert_close(errors[2.0, "offset"], errors[0.0, "offset"])
    torch.testing.assert_close(errors[0.0, "flicker"], torch.full((2, 12), 0.25))
    inner = errors[2.0, "flicker"][:, 3:-3]  # a moving mean of 5 keeps +-0.1 of it: fast part +-0.4
    torch.testing.assert_close(inner, torch.full_like(inner, 0.25 + 2.0 * 0.16))
