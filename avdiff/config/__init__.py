"""Typed, strictly validated YAML configuration (see `schema` for every key).

Recipes ship inside the package (avdiff/configs/); `packaged_config("tiny")` is the file of one,
and every `--config` / `load_config` accepts such a name as well as a path.
"""

from avdiff.config.loader import (
    PACKAGED_CONFIG_DIR,
    dump_yaml,
    load_config,
    packaged_config,
    packaged_configs,
    read_config_chain,
    resolve_config_path,
    save_config,
    to_dict,
)
from avdiff.config.schema import (
    AVDiffConfig,
    DiffusionConfig,
    EDMConfig,
    EnhancementConfig,
    OUVEConfig,
    SamplerConfig,
    ScoreModelConfig,
    SpectrogramConfig,
    UNetConfig,
)

__all__ = [
    "AVDiffConfig",
    "DiffusionConfig",
    "EDMConfig",
    "EnhancementConfig",
    "OUVEConfig",
    "PACKAGED_CONFIG_DIR",
    "SamplerConfig",
    "ScoreModelConfig",
    "SpectrogramConfig",
    "UNetConfig",
    "dump_yaml",
    "load_config",
    "packaged_config",
    "packaged_configs",
    "read_config_chain",
    "resolve_config_path",
    "save_config",
    "to_dict",
]
