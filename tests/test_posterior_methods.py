"""Posterior methods as registered classes, and the resolved plans the pipeline runs.

A toy method defined in this file alone runs through `pipeline.enhance` and `avdiff enhance`
(its option becomes a flag); model folders written before methods had their own settings (the
two shipped ones and the reference folder) keep loading with what they recorded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from avdiff.cli import main
from avdiff.config.loader import option
from avdiff.config.schema import LEGACY_METHODS, LEGACY_POSTERIOR_DEFAULTS, EnhancementConfig
from avdiff.errors import ConfigError
from avdiff.pipeline import AVDiffusionPipeline
from avdiff.pipeline.plans import EnhancementPlan, GenerationPlan
from avdiff.posterior import METHODS, PosteriorMethod, PosteriorOutput, PosteriorProblem, register_method
from avdiff.posterior.nmf import NoiseModel
from avdiff.posterior.settings import InputNoiseSettings, PassSettings
from conftest import REPO_ROOT

INPUT_NOISE_FIELDS = {field.name for field in dataclasses.fields(InputNoiseSettings)}


@dataclass(frozen=True)
class ShrinkSettings(PassSettings):
    """The toy's settings: the shared pass settings and one of its own."""

    noise_level: float = option(1.0, "the noise level, in units of sigma_data, at which y is denoised once")


class Shrink(PosteriorMethod):
    """A toy: the denoiser applied once to y at one noise level (one network call per batch)."""

    settings_class = ShrinkSettings

    def run(self, problem: PosteriorProblem) -> PosteriorOutput:
        sigma = torch.full((len(problem.y),), self.settings.noise_level * problem.formulation.sigma_data)
        denoised = problem.denoiser_for(1)(problem.y, sigma)
        batch, _, bins, frames = problem.y.shape
        noise = NoiseModel(torch.ones(batch, bins, 1), torch.ones(batch, 1, frames))
        return PosteriorOutput(sample=denoised, noise=noise, network_calls=1)


@pytest.fixture
def toy_method():
    """The toy registered for one test, as a plug-in's module would register it."""
    register_method("toy-shrink")(Shrink)
    yield "toy-shrink"
    METHODS.unregister("toy-shrink")


def noisy_clip(seconds: float = 1.0) -> np.ndarray:
    return (0.1 * np.random.default_rng(7).standard_normal(int(16000 * seconds))).astype(np.float32)


def test_a_toy_method_in_one_file_runs_through_the_pipeline(random_pipeline, toy_method):
    out = random_pipeline.enhance(noisy_clip(), sample_rate=16000, method=toy_method, options={"noise_level": 2.0})
    assert out.network_calls == 1 and out.audio.shape == (16000,) and np.isfinite(out.audio).all()
    assert not np.allclose(out.audio, noisy_clip(), atol=1e-3)
    assert out.plan.method == toy_method and out.plan.settings == ShrinkSettings(noise_level=2.0)
    assert out.plan.to_dict()["options"]["noise_level"] == 2.0
    with pytest.raises(ConfigError, match="unknown key 'em_iterations'"):
        random_pipeline.enhance(noisy_clip(), sample_rate=16000, method=toy_method, options={"em_iterations": 2})


def test_a_toy_method_runs_from_the_command_line_with_its_own_flag(random_pipeline, toy_method, tmp_path, capsys):
    model = random_pipeline.save_pretrained(tmp_path / "model")
    sf.write(tmp_path / "noisy.wav", noisy_clip(), 16000)
    out = tmp_path / "clean.wav"
    argv = ["enhance", "--model", str(model), "--noisy", str(tmp_path / "noisy.wav"), "--output", str(out),
            "--device", "cpu", "--noise-level", "3"]
    assert main([*argv, "--method", toy_method]) == 0
    assert "toy-shrink (audio-only), 1 network calls" in capsys.readouterr().out
    settings = yaml.safe_load(out.with_suffix(".settings.yaml").read_text())
    assert settings["plan"]["method"] == toy_method and settings["plan"]["options"]["noise_level"] == 3.0
    assert sf.info(out).frames == 16000
    assert main([*argv, "--method", "udiffse+", "--overwrite"]) == 2
    assert "method 'udiffse+' has no option --noise-level (--noise-level is an option of toy-shrink)" in \
        capsys.readouterr().err


def test_a_plan_is_resolved_once_frozen_and_carried_by_every_output(random_pipeline):
    plan = random_pipeline.enhancement_plan("udiffse", steps=2, options={"em_iterations": 2, "num_samples": 1})
    assert isinstance(plan, EnhancementPlan) and (plan.settings.steps, plan.settings.em_iterations) == (2, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.method = "dps"  # type: ignore[misc]
    out = random_pipeline.enhance(noisy_clip(0.5), sample_rate=16000, plan=plan)
    assert out.plan is plan and out.network_calls == 2 * 2
    with pytest.raises(TypeError, match="a plan or overrides, not both"):
        random_pipeline.enhance(noisy_clip(0.5), sample_rate=16000, plan=plan, steps=3)
    with pytest.raises(ValueError, match="give steps once"):
        random_pipeline.enhancement_plan("udiffse", steps=2, options={"steps": 3})
    generation = random_pipeline.generation_plan(sampler="dpmpp_2m", steps=2, num_samples=2)
    video = np.random.default_rng(0).integers(0, 255, (5, 40, 40), dtype=np.uint8)
    made = random_pipeline.generate(video, generation)
    assert isinstance(made.plan, GenerationPlan) and made.audio.shape[0] == 2 and made.network_calls == 2
    assert made.plan.to_dict()["sampler_options"]["eta"] == 0.0  # every option, resolved


def test_a_models_options_apply_to_its_own_method_and_a_preset_brings_its_own(random_pipeline):
    components = dataclasses.replace(random_pipeline.components,
                                     enhancement=EnhancementConfig(method="dps", options={"dps_weight": 0.5}))
    pipeline = AVDiffusionPipeline(components)
    assert pipeline.enhancement_plan().settings.dps_weight == 0.5
    assert pipeline.enhancement_plan("dps", options={"steps": 3}).settings.dps_weight == 0.5  # merged
    assert pipeline.enhancement_plan("udiffse+").settings == METHODS.get("udiffse+").defaults
    paper = pipeline.enhancement_plan("udiffse-paper")
    assert paper.to_dict()["runs"] == "udiffse" and paper.settings.steps == 30 and paper.settings.schedule == "ouve"


@pytest.mark.parametrize("folder", ["models/speech-prior", "tests/data/reference/model"])
def test_model_folders_written_before_keep_loading_with_what_they_recorded(folder):
    """Their indexes have the flat `enhancement.posterior` section of every method."""
    index = yaml.safe_load((REPO_ROOT / folder / "avdiff_pipeline.json").read_text())
    assert "posterior" in index["enhancement"]
    pipeline = AVDiffusionPipeline.from_pretrained(REPO_ROOT / folder, device="cpu")
    plan = pipeline.enhancement_plan()
    recorded = index["enhancement"]["posterior"]
    options = dataclasses.asdict(plan.settings)
    assert plan.method == index["enhancement"]["method"]
    newer = index["enhancement"].get("options", {})  # options recorded beside the flat section win
    legacy_era = {k: v for k, v in options.items() if k not in INPUT_NOISE_FIELDS and k not in newer}
    assert {k: v for k, v in recorded.items() if k in legacy_era} == legacy_era  # every value it runs, as recorded
    assert {k: options[k] for k in newer} == newer
    newer_noise = {k: v for k, v in newer.items() if k in INPUT_NOISE_FIELDS}
    assert {k: options[k] for k in INPUT_NOISE_FIELDS} == {**dataclasses.asdict(InputNoiseSettings()), **newer_noise}


def test_the_legacy_section_defaults_are_the_built_in_methods_defaults():
    """So a legacy section's values that equal these can be dropped without changing what runs."""
    assert set(LEGACY_METHODS) <= {name for name, entry in METHODS.items() if not entry.is_preset}
    for name in LEGACY_METHODS:
        entry = METHODS.get(name)
        for field in dataclasses.fields(entry.defaults):
            if field.name in INPUT_NOISE_FIELDS:  # added after the flat section: no legacy file has them
                continue
            assert LEGACY_POSTERIOR_DEFAULTS[field.name] == getattr(entry.defaults, field.name), (name, field.name)
