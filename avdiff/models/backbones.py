"""The registry of score networks (backbones), sgmse-style, and the conditioning contract.

A backbone is an `nn.Module` with diffusers' `ConfigMixin`/`ModelMixin` (so a model folder can
save and rebuild it) whose forward is

    network(sample (B, 2, F, T), noise_level (B,), cond=None | (B, D, T), cond_mask=None | (B, T) bool)
        -> (B, 2, F, T)

for any F and T, where D = `score_model.cond_channels` and every frame whose mask is False (and
every frame when `cond` is None) is replaced by one learned null condition: a fully masked
condition must give exactly the output of `cond=None`, and values at masked frames must not
change the output. Classifier-free guidance and the audio-only prior rely on that
(`tests/test_registries.py` checks it for every registered backbone).

Every backbone is registered with the dataclass of its settings and built as
`model_class(cond_channels=D, **settings)`. Adding one is one `register_backbone` call; its
settings come from `score_model.options`, checked against that dataclass. The built-in `unet`
is registered the same way, but its settings are the schema's own typed section
`score_model.unet` (documented in every resolved config, and what existing configs and model
folders were written with).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from avdiff.config.loader import from_dict, to_dict
from avdiff.config.schema import ScoreModelConfig
from avdiff.errors import ConfigError
from avdiff.registry import Registry, RegistryError

if TYPE_CHECKING:  # annotations only: the registry lists and checks names without torch's model libraries
    from torch import nn

OPTIONS = "options"  # the section of `score_model` that registered backbones take their settings from


@dataclass(frozen=True)
class Backbone:
    """A registered score network: its class, the dataclass of its settings (None: it has none)
    and the section of `score_model` they are read from."""

    model_class: type[nn.Module]
    config_class: type | None = None
    section: str = OPTIONS

    def settings(self, config: ScoreModelConfig, name: str) -> dict[str, Any]:
        """The keyword settings of this backbone in the `score_model` section `config`."""
        if self.section != OPTIONS:
            if config.options:
                raise ConfigError(f"score_model.options {sorted(config.options)} are for backbones registered "
                                  f"with register_backbone; the {name} backbone's settings go under "
                                  f"score_model.{self.section}")
            return to_dict(getattr(config, self.section))
        if self.config_class is None:
            if config.options:
                raise ConfigError(f"backbone {name!r} takes no score_model.options, got {sorted(config.options)}")
            return {}
        return to_dict(from_dict(self.config_class, config.options, f"backbone {name!r}", "score_model.options."))

    def build(self, config: ScoreModelConfig, name: str) -> nn.Module:
        return self.model_class(cond_channels=config.cond_channels, **self.settings(config, name))


BACKBONES: Registry[Backbone] = Registry(
    "backbone", "a backbone of your own: avdiff.models.backbones.register_backbone in a module imported first, "
    "or an avdiff.plugins entry point")


def register_backbone(name: str, model_class: type[nn.Module], config_class: type | None = None, *,
                      replace: bool = False) -> None:
    """Register `model_class` under `name`; it is built as `model_class(cond_channels=..., **settings)`,
    the settings read from `score_model.options` and checked against the dataclass `config_class`
    (no settings when None)."""
    BACKBONES.register(name, Backbone(model_class, config_class), replace=replace)


BACKBONES.register_lazy("unet", "avdiff.models.score_unet:UNET_BACKBONE")  # diffusers loads when it is built


def build_backbone(config: ScoreModelConfig) -> nn.Module:
    """The score network the `score_model` section names."""
    try:
        backbone = BACKBONES.get(config.backbone)
    except RegistryError as error:
        raise ConfigError(f"score_model.backbone: {error}") from None
    return backbone.build(config, config.backbone)


def backbone_class(class_name: str) -> type[Any]:
    """The registered backbone class called `class_name` (a model folder's index names it; loading
    one loads the plug-ins first); a RegistryError (a KeyError) naming the registered classes otherwise."""
    found = BACKBONES.find(lambda backbone: backbone.model_class.__name__ == class_name)
    if found is None:
        registered = ", ".join(sorted(b.model_class.__name__ for b in BACKBONES.values()))
        raise RegistryError(f"no registered backbone class {class_name!r} (registered: {registered})")
    return found[1].model_class
