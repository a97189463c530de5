"""Open any avdiff model folder with the pipeline its index names: a score network's
(`AVDiffusionPipeline`) or a speech VAE's (`VAEPipeline`)."""

from __future__ import annotations

from pathlib import Path

import torch

from avdiff.inference import AUTO
from avdiff.pipeline.model_folder import pipeline_class_name
from avdiff.pipeline.pipeline import AVDiffusionPipeline
from avdiff.pipeline.shipped import resolve_model
from avdiff.pipeline.vae_folder import VAE_PIPELINE
from avdiff.pipeline.vae_pipeline import VAEPipeline


def load_pipeline(model: str | Path, device: str | torch.device | None = "cpu",
                  dtype: torch.dtype | str | None = None, backend: str = AUTO) -> AVDiffusionPipeline | VAEPipeline:
    """The pipeline of a model folder or shipped model name (arguments as `from_pretrained`'s;
    `backend` is the score network's engine, which a VAE, run in torch, does not have)."""
    path = resolve_model(model)
    if pipeline_class_name(path) == VAE_PIPELINE:
        return VAEPipeline.from_pretrained(path, device=device, dtype=dtype)
    return AVDiffusionPipeline.from_pretrained(path, device=device, dtype=dtype, backend=backend)
