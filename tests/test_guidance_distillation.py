"""Guidance distillation (training.objective guided): a student started from its teacher learns the
teacher's guided estimate, reads the teacher's frozen lips, and samples with one pass per level."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from avdiff.config import AVDiffConfig, load_config
from avdiff.diffusion.formulation import build_formulation
from avdiff.errors import ConfigError
from avdiff.pipeline import AVDiffusionPipeline
from avdiff.pipeline.inputs import MouthVideo
from avdiff.training.guidance_distillation import load_teacher, teacher_sigma_data
from avdiff.training.model import AVDiffusionModel
from avdiff.training.trainer import train
from test_two_stage import SMALL_RUN  # tests/ is on sys.path
from tinycorpus import make_tiny_corpus

WEIGHTS = "diffusion_pytorch_model.safetensors"
GUIDANCE = 3.0


def guided_settings(manifest: Path, teacher: Path) -> list[str]:
    return [f"data.train_manifest={manifest}", *SMALL_RUN, "training.objective=guided", f"training.teacher={teacher}",
            f"training.teacher_guidance={GUIDANCE}", "training.learning_rate=1e-2", "sampler.guidance_scale=1",
            "sampler.name=dpmpp_2m", "sampler.steps=3"]


@pytest.fixture(scope="module")
def distilled(tmp_path_factory) -> tuple[Path, Path, AVDiffConfig]:
    """A tiny audio-visual teacher (2 joint steps), its student after 2 guided steps, and the student's config."""
    root = tmp_path_factory.mktemp("distil")
    manifest = make_tiny_corpus(root / "data", num_items=8, num_frames=12, size=32)
    teacher_config = load_config(AVDiffConfig, None, [f"data.train_manifest={manifest}", *SMALL_RUN])
    teacher = train(teacher_config, root / "teacher", max_steps=2, cpu=True).model_dir
    config = load_config(AVDiffConfig, None, guided_settings(manifest, teacher))
    student = train(config, root / "student", max_steps=2, cpu=True).model_dir
    return teacher, student, config


def student_model(config: AVDiffConfig) -> AVDiffusionModel:
    return AVDiffusionModel.from_config(config, build_formulation(config.diffusion, sigma_data=teacher_sigma_data(config)))


def test_the_student_starts_as_its_teacher_and_only_its_score_network_trains(distilled):
    teacher, _, config = distilled
    model = student_model(config)
    theirs = load_file(str(teacher / "score_model" / WEIGHTS))
    assert all(torch.equal(value, theirs[name]) for name, value in model.score_model.state_dict().items())
    assert not any(p.requires_grad for p in model.lip_encoder.parameters())
    trainable = {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"denoiser"}
    assert not any("teacher" in name for name in model.state_dict())  # never checkpointed or exported


def test_the_loss_is_the_distance_to_the_teachers_guided_estimate(distilled):
    """At the start the student is the teacher's conditional denoiser: the loss is zero against a
    teacher at w = 1 and positive at w = 3 (and the data's own x0 is not the target)."""
    _, _, config = distilled
    batch = [torch.randn(2, 12 * 640) * 0.1, torch.randint(0, 255, (2, 12, 32, 32), dtype=torch.uint8),
             torch.ones(2, 12, dtype=torch.bool), torch.ones(2, 12, dtype=torch.bool), torch.ones(2, 61, dtype=torch.bool)]
    losses = {}
    for w in (1.0, GUIDANCE):
        model = student_model(load_config(AVDiffConfig, None, [*guided_settings(config.data.train_manifest,
                                                                                config.training.teacher),
                                                               f"training.teacher_guidance={w}"]))
        out = model(*batch, torch.Generator().manual_seed(1), drop_conditions=False)
        losses[w] = float(out.loss.detach() - out.auxiliary.get("envelope", 0.0) * config.training.envelope_loss_weight)
    assert losses[1.0] < 1e-10 < 1e-4 < losses[GUIDANCE]


def test_the_target_is_the_teachers_guided_estimate(distilled):
    _, _, config = distilled
    teacher = load_teacher(config)
    torch.manual_seed(0)
    x, sigma = torch.randn(2, 2, 256, 20), torch.tensor([0.3, 2.0])
    cond, mask = torch.randn(2, 64, 20), torch.ones(2, 20, dtype=torch.bool)
    mask[1] = False  # no face at all: the target is the audio-only estimate
    target = teacher.target(cond, mask)(x, sigma)
    with torch.no_grad():
        d_cond = teacher.denoiser(x, sigma, cond=cond, cond_mask=mask)
        d_null = teacher.denoiser(x, sigma, cond=cond, cond_mask=torch.zeros_like(mask))
    torch.testing.assert_close(target, d_null + GUIDANCE * (d_cond - d_null), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(target[1], d_null[1], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(target[0], d_cond[0], atol=1e-4)  # the guidance moves it


def test_the_distilled_folder_trained_kept_the_lips_and_samples_at_one_pass_per_level(distilled):
    teacher, student, _ = distilled
    assert load_file(str(student / "lip_encoder" / WEIGHTS)).keys() == load_file(str(teacher / "lip_encoder" / WEIGHTS)).keys()
    for name, value in load_file(str(student / "lip_encoder" / WEIGHTS)).items():
        assert torch.equal(value, load_file(str(teacher / "lip_encoder" / WEIGHTS))[name])
    before, after = (load_file(str(folder / "score_model" / WEIGHTS)) for folder in (teacher, student))
    assert any(not torch.equal(before[name], after[name]) for name in before)
    assert "objective: guided" in (student / "config.yaml").read_text()

    pipeline = AVDiffusionPipeline.from_pretrained(student, device="cpu", backend="torch")
    plan = pipeline.generation_plan()
    assert plan.sampler.guidance_scale == 1.0 and plan.sampler.steps == 3
    passes = []
    network = pipeline.denoiser.network
    hook = network.register_forward_hook(lambda module, inputs, output: passes.append(inputs[0].shape[0]))
    rois = np.random.default_rng(0).integers(0, 255, (10, 32, 32), dtype=np.uint8)
    out = pipeline.generate(MouthVideo(rois, np.ones(10, bool)), plan)
    hook.remove()
    assert out.network_calls == 3 and passes == [1, 1, 1]  # one item, one pass per level: no null branch
    assert np.isfinite(out.audio).all() and out.audio.shape == (1, 10 * 640)


def test_bad_guided_settings_are_clear_config_errors(distilled, tmp_path):
    teacher, _, config = distilled
    with pytest.raises(ConfigError, match="set training.teacher"):
        load_config(AVDiffConfig, None, ["training.objective=guided"])
    manifest = config.data.train_manifest
    for folder, message in ((tmp_path / "nothing", "training.teacher"),):
        with pytest.raises(ConfigError, match=message):
            student_model(load_config(AVDiffConfig, None, guided_settings(manifest, folder)))
    wider = load_config(AVDiffConfig, None, [*guided_settings(manifest, teacher), "score_model.unet.block_out_channels=[8,24]"])
    with pytest.raises(ConfigError, match="training.teacher: the score_model section does not describe its network"):
        student_model(wider)


def test_the_recipe_distils_the_shipped_teacher_and_the_card_runs_it():
    """configs/v2s-fast-cpu.yaml distils models/v2s at its own guidance; models/v2s-fast is what it made."""
    import json

    from avdiff.pipeline.shipped import resolve_model, shipped_models_dir

    config = load_config(AVDiffConfig, "v2s-fast-cpu", [])
    teacher = resolve_model(config.training.teacher)
    assert config.training.objective == "guided" and teacher.resolve() == (shipped_models_dir() / "v2s").resolve()
    assert json.loads((teacher / "avdiff_pipeline.json").read_text())["sampler"]["guidance_scale"] == \
        config.training.teacher_guidance
    assert config.sampler.guidance_scale == 1.0
    student = shipped_models_dir() / "v2s-fast"
    assert "avdiff train --config v2s-fast-cpu" in (student / "README.md").read_text()
    assert json.loads((student / "avdiff_pipeline.json").read_text())["sampler"]["guidance_scale"] == 1.0
    shipped = load_config(AVDiffConfig, student / "config.yaml", [])
    assert (shipped.training.objective, shipped.training.teacher) == ("guided", config.training.teacher)
