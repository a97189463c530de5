"""Typed, strictly validated YAML configuration (see `schema` for every key)."""

from avdiff.config.loader import dump_yaml, load_config, save_config, to_dict
from avdiff.config.schema import (
    AVDiffConfig,
    DiffusionConfig,
    EDMConfig,
    OUVEConfig,
    SamplerConfig,
    ScoreModelConfig,
    SpectrogramConfig,
)

__all__ = [
    "AVDiffConfig",
    "DiffusionConfig",
    "EDMConfig",
    "OUVEConfig",
    "SamplerConfig",
    "ScoreModelConfig",
    "SpectrogramConfig",
    "dump_yaml",
    "load_config",
    "save_config",
    "to_dict",
]
