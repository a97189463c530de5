"""Trained models as folders (safetensors only) and the pipeline that samples with them.

The names below load on first use (PEP 562), so a command that needs only a light submodule
(`avdiff.pipeline.batch`, `.shipped`, `.posterior_settings`) does not import the networks, and
`avdiff --help` starts without torch's model libraries.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AVDiffusionPipeline": "avdiff.pipeline.pipeline",
    "EnhancementOutput": "avdiff.pipeline.pipeline",
    "GenerationOutput": "avdiff.pipeline.pipeline",
    "INDEX_NAME": "avdiff.pipeline.model_folder",
    "ModelComponents": "avdiff.pipeline.model_folder",
    "load_model_folder": "avdiff.pipeline.model_folder",
    "save_model_folder": "avdiff.pipeline.model_folder",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the submodule that defines `name` when it is first asked for."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'avdiff.pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
