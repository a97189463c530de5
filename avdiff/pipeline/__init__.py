"""Trained models as folders (safetensors only) and the pipelines that run them: a diffusion
model's (`AVDiffusionPipeline`) and a speech VAE's (`VAEPipeline`); `load_pipeline` opens either.

The names below load on first use (PEP 562), so a command that needs only a light submodule
(`avdiff.pipeline.batch`, `.shipped`) does not import the networks, and
`avdiff --help` starts without torch's model libraries.
"""

from __future__ import annotations

from avdiff.lazy import lazy_exports

_EXPORTS = {
    "AVDiffusionPipeline": "avdiff.pipeline.pipeline",
    "EnhancementPlan": "avdiff.pipeline.plans",
    "GenerationPlan": "avdiff.pipeline.plans",
    "enhance_channels": "avdiff.pipeline.channels",
    "EnhancementOutput": "avdiff.pipeline.pipeline",
    "GenerationOutput": "avdiff.pipeline.pipeline",
    "INDEX_NAME": "avdiff.pipeline.model_folder",
    "ModelComponents": "avdiff.pipeline.model_folder",
    "load_model_folder": "avdiff.pipeline.model_folder",
    "save_model_folder": "avdiff.pipeline.model_folder",
    "VAEPipeline": "avdiff.pipeline.vae_pipeline",
    "VAEComponents": "avdiff.pipeline.vae_folder",
    "load_pipeline": "avdiff.pipeline.loading",
    "load_vae_folder": "avdiff.pipeline.vae_folder",
    "save_vae_folder": "avdiff.pipeline.vae_folder",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
