"""Where a score network's training starts from weights it did not learn in this run: the teacher
of guidance distillation (`training.teacher`) or a trained model fine-tuned on new lips
(`score_model.pretrained`, the second stage of a recipe whose lips changed). Either way the
network must denoise on its source's scale: the formulation and sigma_data are checked here."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from avdiff.config.schema import AVDiffConfig
from avdiff.diffusion.formulation import DiffusionFormulation, load_formulation
from avdiff.errors import ConfigError, InputError
from avdiff.pipeline.model_folder import load_model_folder
from avdiff.pipeline.shipped import resolve_model

PRETRAINED_KEY = "score_model.pretrained"


def model_folder_for(key: str, name: str | None) -> Path:
    """The model folder a config key names (a path or a shipped model's name); a ConfigError naming the key."""
    try:
        folder = resolve_model(name or "")
    except InputError as error:
        raise ConfigError(f"{key}: {error}") from error
    if not folder.is_dir():
        raise ConfigError(f"{key}: {folder} is not a model folder")
    return folder


def sigma_data_of(key: str, name: str | None) -> float:
    """The sigma_data of the model folder a config key names: a network started from it denoises on its scale."""
    return load_formulation(model_folder_for(key, name) / "diffusion").sigma_data


def copy_network(student: nn.Module, formulation: DiffusionFormulation, source: nn.Module,
                 source_formulation: DiffusionFormulation, key: str) -> None:
    """Copy `source`'s weights into `student` after checking both denoise alike (same formulation and
    sigma_data); a ConfigError naming `key` says what differs."""
    if (type(source_formulation) is not type(formulation)
            or abs(source_formulation.sigma_data - formulation.sigma_data) > 1e-9):
        raise ConfigError(f"{key}: its formulation ({type(source_formulation).__name__}, sigma_data "
                          f"{source_formulation.sigma_data:.6g}) differs from this run's ({type(formulation).__name__}, "
                          f"sigma_data {formulation.sigma_data:.6g})")
    try:
        student.load_state_dict(source.state_dict(), strict=True)
    except RuntimeError as error:
        raise ConfigError(f"{key}: the score_model section does not describe its network "
                          f"({str(error).splitlines()[0]}); use its recipe") from error


def start_from_pretrained(score_model: nn.Module, formulation: DiffusionFormulation, config: AVDiffConfig) -> None:
    """Copy the score network of the model folder `score_model.pretrained` names into `score_model`."""
    folder = model_folder_for(PRETRAINED_KEY, config.score_model.pretrained)
    try:
        components = load_model_folder(folder)
    except InputError as error:
        raise ConfigError(f"{PRETRAINED_KEY}: {error}") from error
    copy_network(score_model, formulation, components.score_model, components.formulation, PRETRAINED_KEY)
