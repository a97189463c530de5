"""Trained models as folders (safetensors only) and the pipeline that samples with them."""

from avdiff.pipeline.model_folder import INDEX_NAME, ModelComponents, load_model_folder, save_model_folder

__all__ = ["INDEX_NAME", "ModelComponents", "load_model_folder", "save_model_folder"]
