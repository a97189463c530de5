"""Extending avdiff through its registries alone: a toy sampler and a toy score network.

Nothing outside this file is edited to add them: `register_sampler` puts the sampler into
`SAMPLERS` (and so into `avdiff generate --sampler`), `register_backbone` puts the network into
`BACKBONES` (so `score_model.backbone` builds it and a model folder naming its class loads it).
Every registered backbone, built in or not, passes the conditioning contract test. Formulations,
landmark backends and layouts are used by name the same way, and a model folder naming a plug-in's
backbone loads it through the avdiff.plugins entry points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from avdiff.cli import main
from avdiff.config import AVDiffConfig, load_config
from avdiff.config.loader import to_dict
from avdiff.diffusion import EDMFormulation, register_sampler
from avdiff.diffusion.noise import randn_like_per_item
from avdiff.diffusion.samplers import SAMPLERS, CallCounter, SamplerOutput, Step, after_step, levels
from avdiff.models import LipEncoder
from avdiff.models.backbones import BACKBONES, build_backbone, register_backbone
from avdiff.pipeline import AVDiffusionPipeline, ModelComponents, save_model_folder
from avdiff.registry import RegistryError


class ToyBackbone(ModelMixin, ConfigMixin):
    """A per-bin linear map of the input plus a per-frame bias from the condition (null where masked)."""

    @register_to_config
    def __init__(self, cond_channels: int, width: int = 4) -> None:
        super().__init__()
        self.null = nn.Parameter(torch.randn(cond_channels))
        self.cond_proj = nn.Sequential(nn.Linear(cond_channels, width), nn.Tanh(), nn.Linear(width, 2))
        self.mix = nn.Conv2d(2, 2, kernel_size=1)
        self.noise_gain = nn.Linear(1, 2)

    def forward(self, sample, noise_level, cond=None, cond_mask=None):
        batch, _, _, frames = sample.shape
        null = self.null.view(1, -1, 1).expand(batch, -1, frames)
        if cond is not None:
            mask = torch.ones(batch, frames, dtype=torch.bool) if cond_mask is None else cond_mask.bool()
            null = torch.where(mask[:, None, :], cond, null)
        bias = self.cond_proj(null.transpose(1, 2)).transpose(1, 2)[:, :, None, :]  # (B, 2, 1, T)
        gain = self.noise_gain(noise_level.reshape(-1, 1).float())[:, :, None, None]
        return self.mix(sample) * gain + bias


@dataclass
class ToyBackboneConfig:
    width: int = 4


def sample_toy_euler(denoiser, x, sigmas, *, generators, callback=None, progress=False, noise_scale: float = 0.5):
    """Euler on the probability-flow ODE plus a little fresh noise: a toy, not a good sampler."""
    model = CallCounter(denoiser)
    for i, sigma, sigma_next in levels(sigmas, progress, "toy"):
        denoised = model(x, sigma)
        x_next = denoised + sigma_next * (x - denoised) / sigma
        x_next = x_next + noise_scale * sigma_next * randn_like_per_item(x, generators) / math.sqrt(len(sigmas))
        x = after_step(callback, Step(i, sigma, sigma_next, x_next, denoised))
    return SamplerOutput(x, model.calls)


@pytest.fixture
def registered():
    """The toy sampler and backbone, registered for one test and removed after it."""
    register_sampler("toy_euler", lambda steps, options: steps)(sample_toy_euler)
    register_backbone("toy", ToyBackbone, ToyBackboneConfig)
    yield
    SAMPLERS.unregister("toy_euler")
    BACKBONES.unregister("toy")


def toy_model_folder(tmp_path):
    config = load_config(AVDiffConfig, None, ["score_model.backbone=toy", "score_model.options={width: 6}",
                                              "score_model.cond_channels=8", "lip_encoder.output_dim=8",
                                              "sampler.name=toy_euler", "sampler.steps=4",
                                              "sampler.options={noise_scale: 0.25}", "spectrogram.n_fft=254"])
    torch.manual_seed(0)
    components = ModelComponents(
        lip_encoder=LipEncoder.from_preset("tiny", output_dim=8), score_model=build_backbone(config.score_model),
        formulation=EDMFormulation(sigma_data=0.1), spectrogram=config.spectrogram, sampler=config.sampler,
        crop_size=32)
    return save_model_folder(components, tmp_path / "toy-model")


def test_toy_sampler_and_backbone_run_through_generate_and_enhance(registered, tmp_path):
    folder = toy_model_folder(tmp_path)
    pipeline = AVDiffusionPipeline.from_pretrained(folder)
    assert isinstance(pipeline.components.score_model, ToyBackbone)
    assert pipeline.components.score_model.config.width == 6
    assert pipeline.components.sampler.options == {"noise_scale": 0.25}
    video = np.random.default_rng(0).integers(0, 255, (10, 40, 40), dtype=np.uint8)
    generated = pipeline.generate(video, seed=1)
    assert generated.network_calls == 4 and generated.audio.shape == (1, 6400)
    assert np.isfinite(generated.audio).all() and np.abs(generated.audio).max() > 0
    noisy = (0.1 * np.random.default_rng(1).standard_normal(6400)).astype(np.float32)
    for lips in (None, video):
        enhanced = pipeline.enhance(noisy, sample_rate=16000, video=lips, steps=3)
        assert enhanced.audio.shape == noisy.shape and np.isfinite(enhanced.audio).all()
    # The CLI's sampler choices come from the registry: the toy sampler is one of them.
    np.save(tmp_path / "clip.npy", video)
    out = tmp_path / "clip.wav"
    assert main(["generate", "--model", str(folder), "--video", str(tmp_path / "clip.npy"), "--output", str(out),
                 "--sampler", "toy_euler", "--steps", "2"]) == 0
    assert out.is_file()


def test_a_model_folder_naming_an_unregistered_backbone_is_refused(registered, tmp_path):
    from avdiff.errors import InputError

    folder = toy_model_folder(tmp_path)
    BACKBONES.unregister("toy")
    with pytest.raises(InputError, match="no registered backbone class 'ToyBackbone'"):
        AVDiffusionPipeline.from_pretrained(folder)
    register_backbone("toy", ToyBackbone, ToyBackboneConfig)


def test_backbone_options_are_checked_against_the_registered_config(registered):
    from avdiff.errors import ConfigError

    config = load_config(AVDiffConfig, None, ["score_model.backbone=toy", "score_model.options={depth: 3}"])
    with pytest.raises(ConfigError, match="unknown key 'score_model.options.depth'"):
        build_backbone(config.score_model)
    with pytest.raises(ConfigError, match="backbone: unknown backbone 'nope'; registered: toy, unet"):
        load_config(AVDiffConfig, None, ["score_model.backbone=nope"])
    with pytest.raises(ConfigError, match="go under score_model.unet"):
        build_backbone(load_config(AVDiffConfig, None, ["score_model.options={width: 2}"]).score_model)


# ----------------------------------------------------------------------------- the contract

CONTRACT_CONFIG = ["score_model.cond_channels=6", "lip_encoder.output_dim=6",
                   "score_model.unet.block_out_channels=[8, 8]", "score_model.unet.attention_levels=[false, false]",
                   "score_model.unet.norm_num_groups=4", "score_model.unet.cond_hidden_channels=8",
                   "score_model.unet.attention_head_dim=8"]


def contract_network(name):
    overrides = list(CONTRACT_CONFIG) + [f"score_model.backbone={name}"]
    if name != "unet":  # registered backbones take the unet's settings nowhere
        overrides = [o for o in overrides if not o.startswith("score_model.unet")]
    torch.manual_seed(0)
    network = build_backbone(load_config(AVDiffConfig, None, overrides).score_model).eval()
    with torch.no_grad():  # a trained-looking null embedding, not the initial one
        for parameter in network.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return network


@pytest.mark.parametrize("name", ["unet", "toy"])
def test_every_backbone_keeps_the_conditioning_contract(registered, name):
    assert sorted(BACKBONES) == ["toy", "unet"], "a new built-in backbone: add it to this test's parameters"
    network = contract_network(name)
    gen = torch.Generator().manual_seed(1)
    sample, level = torch.randn(2, 2, 19, 23, generator=gen), torch.tensor([0.3, -0.8])
    cond = torch.randn(2, 6, 23, generator=gen)
    mask = torch.ones(2, 23, dtype=torch.bool)
    mask[0, 5:12] = False
    with torch.no_grad():
        out = network(sample, level, cond=cond, cond_mask=mask)
        assert out.shape == sample.shape  # any F and T, output cropped back exactly
        null = network(sample, level, cond=None)
        all_masked = network(sample, level, cond=cond, cond_mask=torch.zeros_like(mask))
        torch.testing.assert_close(all_masked, null, rtol=0, atol=1e-6)
        other = cond.clone()
        other[0, :, 5:12] = 100.0  # values at masked frames must not matter
        torch.testing.assert_close(network(sample, level, cond=other, cond_mask=mask), out, rtol=0, atol=1e-6)
        assert not torch.allclose(out, null, atol=1e-4)  # unmasked frames do matter


def test_avdiff_config_checks_names_against_the_registries(capsys):
    assert main(["config", "tiny", "--set", "sampler.name=nope"]) != 0
    assert "unknown sampler 'nope'" in capsys.readouterr().err
    assert main(["config", "tiny", "--set", "sampler.options={churn: 2.0}"]) != 0
    assert "no option 'churn'" in capsys.readouterr().err
    assert main(["config", "tiny", "--set", "sampler.name=edm_stochastic", "--set",
                 "sampler.options={churn: 2.0}"]) == 0


# ----------------------------------------------------------------------------- the other registries


def register_toy_backbone() -> None:
    """What a plug-in package's entry point would call (test_a_model_folder_loads_a_plug_in_backbone)."""
    register_backbone("toy", ToyBackbone, ToyBackboneConfig)


def test_a_model_folder_loads_a_plug_in_backbone(registered, tmp_path, monkeypatch):
    """load_model_folder loads the avdiff.plugins entry points first: a folder naming a plug-in's
    class loads without anyone importing the plug-in."""
    from importlib.metadata import EntryPoint

    import avdiff.plugins as plugins

    folder = toy_model_folder(tmp_path)
    BACKBONES.unregister("toy")
    monkeypatch.setattr(plugins, "_PLUGINS", None)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [
        EntryPoint("toy", f"{__name__}:register_toy_backbone", plugins.GROUP)])
    pipeline = AVDiffusionPipeline.from_pretrained(folder)
    assert isinstance(pipeline.components.score_model, ToyBackbone)


def test_the_unet_is_a_registered_backbone_reading_score_model_unet():
    from avdiff.config.schema import UNetConfig
    from avdiff.models import ScoreUNet

    unet = BACKBONES.get("unet")
    assert (unet.model_class, unet.config_class, unet.section) == (ScoreUNet, UNetConfig, "unet")
    config = load_config(AVDiffConfig, None, CONTRACT_CONFIG)
    assert unet.settings(config.score_model, "unet") == to_dict(config.score_model.unet)
    with pytest.raises(RegistryError, match="sampler 'heun' is already registered"):
        register_sampler("heun", lambda steps, options: steps)(sample_toy_euler)


class ToyEDM(EDMFormulation):
    """EDM under another name: a formulation registered from outside avdiff."""


def test_a_registered_formulation_is_built_and_loaded_by_name(tmp_path):
    from avdiff.diffusion import FORMULATIONS, build_formulation, load_formulation

    FORMULATIONS.register("toy-edm", ToyEDM)
    try:
        config = load_config(AVDiffConfig, None, ["diffusion.formulation=toy-edm"])
        formulation = build_formulation(config.diffusion, sigma_data=0.1)
        assert type(formulation) is ToyEDM and formulation.sigma_max == pytest.approx(16.0)
        formulation.save_config(tmp_path)
        assert type(load_formulation(tmp_path)) is ToyEDM
    finally:
        FORMULATIONS.unregister("toy-edm")


def test_a_registered_landmark_backend_and_layout_are_used_by_name(tmp_path):
    import avdiff.landmarks as landmarks
    from avdiff.prepare.layouts import LAYOUTS, SourceItem, discover, is_audio_only, register_layout

    landmarks.BACKENDS.register("toy", lambda device, weights, batch_size: ("toy detector", device, batch_size))
    register_layout("toy", lambda root: [SourceItem("a", None, root / "a.wav", "s1", None)], "a.wav", audio_only=True)
    try:
        assert landmarks.create_detector("toy", device="meta", batch_size=3) == ("toy detector", "meta", 3)
        assert "toy" in landmarks.BACKEND_CHOICES
        assert [item.id for item in discover("toy", tmp_path)] == ["a"] and is_audio_only("toy")
        assert not is_audio_only("grid")
    finally:
        landmarks.BACKENDS.unregister("toy")
        LAYOUTS.unregister("toy")


def test_an_entry_registered_by_reference_is_imported_when_first_used():
    from avdiff.registry import Registry

    things = Registry("thing")
    things.register_lazy("pi", "math:pi")
    things.register_lazy("nothing", "avdiff.no_such_module:THING")
    assert things.names() == ["nothing", "pi"] and things.require("nothing") == "nothing"  # nothing imported yet
    assert things.get("pi") == math.pi
    with pytest.raises(ModuleNotFoundError):
        things.get("nothing")
    with pytest.raises(RegistryError, match="a lazy entry is 'module:attribute'"):
        things.register_lazy("e", "math.e")
