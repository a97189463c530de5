"""The registry of score networks (backbones), sgmse-style, and the conditioning contract.

A backbone is an `nn.Module` with diffusers' `ConfigMixin`/`ModelMixin` (so a model folder can
save and rebuild it) whose forward is

    network(sample (B, 2, F, T), noise_level (B,), cond=None | (B, D, T), cond_mask=None | (B, T) bool)
        -> (B, 2, F, T)

for any F and T, where D = `score_model.cond_channels` and every frame whose mask is False (and
every frame when `cond` is None) is replaced by one learned null condition: a fully masked
condition must give exactly the output of `cond=None`, and values at masked frames must not
change the output. Classifier-free guidance and the audio-only prior rely on that
(`tests/test_backbones.py` checks it for every registered backbone).

Adding a backbone is one `register_backbone` call: the built-in `unet` takes its settings from
the schema's `score_model.unet` section; others from `score_model.options`, checked against
the dataclass they register.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from avdiff.config.loader import from_dict, to_dict
from avdiff.config.schema import ScoreModelConfig
from avdiff.errors import ConfigError
from avdiff.models.score_unet import ScoreUNet


@dataclass(frozen=True)
class Backbone:
    """A registered score network: its class and how to build it from the `score_model` section."""

    model_class: type[nn.Module]
    build: Callable[[ScoreModelConfig], nn.Module]


BACKBONES: dict[str, Backbone] = {}


def register_backbone(name: str, model_class: type[nn.Module], config_class: type | None = None) -> None:
    """Register `model_class` under `name`; it is built as
    `model_class(cond_channels=..., **settings)`, the settings read from `score_model.options`
    and checked against the dataclass `config_class` (no settings when None)."""

    def build(config: ScoreModelConfig) -> nn.Module:
        if config_class is None:
            if config.options:
                raise ConfigError(f"backbone {name!r} takes no score_model.options, got {sorted(config.options)}")
            return model_class(cond_channels=config.cond_channels)
        settings = from_dict(config_class, config.options, f"backbone {name!r}", "score_model.options.")
        return model_class(cond_channels=config.cond_channels, **to_dict(settings))

    BACKBONES[name] = Backbone(model_class, build)


def _build_unet(config: ScoreModelConfig) -> nn.Module:
    if config.options:
        raise ConfigError(f"score_model.options {sorted(config.options)} are for registered backbones; "
                          "the unet's settings go under score_model.unet")
    return ScoreUNet.from_avdiff_config(config)


BACKBONES["unet"] = Backbone(ScoreUNet, _build_unet)


def build_backbone(config: ScoreModelConfig) -> nn.Module:
    """The score network the `score_model` section names."""
    if config.backbone not in BACKBONES:
        raise ConfigError(f"unknown score_model.backbone {config.backbone!r}; registered: "
                          f"{', '.join(sorted(BACKBONES))} (a backbone registered in your own module needs "
                          "that module imported first)")
    return BACKBONES[config.backbone].build(config)


def backbone_class(class_name: str) -> type[Any]:
    """The registered backbone class called `class_name` (a model folder's index names it)."""
    for backbone in BACKBONES.values():
        if backbone.model_class.__name__ == class_name:
            return backbone.model_class
    registered = ", ".join(sorted(b.model_class.__name__ for b in BACKBONES.values()))
    raise KeyError(f"no registered backbone class {class_name!r} (registered: {registered})")
