"""Trained models as folders (safetensors only) and the pipeline that samples with them."""

from avdiff.pipeline.model_folder import INDEX_NAME, ModelComponents, load_model_folder, save_model_folder
from avdiff.pipeline.pipeline import AVDiffusionPipeline, EnhancementOutput, GenerationOutput

__all__ = [
    "AVDiffusionPipeline",
    "EnhancementOutput",
    "GenerationOutput",
    "INDEX_NAME",
    "ModelComponents",
    "load_model_folder",
    "save_model_folder",
]
