"""A model folder from training: the EMA weights of a run in memory, or of a saved checkpoint.

`export_checkpoint` lets a long run's progress be shipped (or evaluated) before it ends: it
rebuilds the model from the run's resolved `config.yaml` and the checkpoint's sigma_data, loads
the checkpoint's EMA weights and writes the same model folder the trainer writes at the end.
The training data is not needed: the checkpoint records whether it had video.
"""

from __future__ import annotations

import logging
from pathlib import Path

from safetensors.torch import load_file

from avdiff.config.loader import load_config, save_config
from avdiff.config.schema import AVDiffConfig
from avdiff.data.crops import AVCropDataset
from avdiff.diffusion.formulation import DiffusionFormulation, build_formulation
from avdiff.errors import InputError
from avdiff.mouth.mouth_model import MouthModel, fit_from_manifests
from avdiff.pipeline.model_folder import TRAINING_CONFIG_NAME as CONFIG_NAME
from avdiff.pipeline.model_folder import ModelComponents, save_model_folder
from avdiff.training import checkpoints as ckpt
from avdiff.training.ema import ExponentialMovingAverage
from avdiff.pipeline.vae_folder import VAEComponents, save_vae_folder
from avdiff.training.model import AVDiffusionModel
from avdiff.training.vae_model import AVVAEModel

logger = logging.getLogger(__name__)


def training_model(config: AVDiffConfig, formulation: DiffusionFormulation) -> AVDiffusionModel | AVVAEModel:
    """The model `training.objective` trains: the speech VAE (vae), else the lips and score network."""
    if config.training.objective == "vae":
        return AVVAEModel.from_config(config)
    return AVDiffusionModel.from_config(config, formulation)


def export_model(ema_model: AVDiffusionModel | AVVAEModel, formulation: DiffusionFormulation, config: AVDiffConfig,
                 audio_visual: bool, output: Path) -> Path:
    """Write `ema_model` as a model folder at `output` (a VAE folder for a VAE), with the run's config beside it."""
    def write_config(folder: Path) -> None:
        save_config(config, folder / CONFIG_NAME, header="resolved config of the training run that made this model")

    mouths = training_mouth_model(config) if audio_visual else None
    if isinstance(ema_model, AVVAEModel):
        return save_vae_folder(VAEComponents(ema_model.lip_encoder, ema_model.vae, config.spectrogram, config.enhancement,
                                             config.data.crop_size, mouths), output, write_config)
    components = ModelComponents(
        lip_encoder=ema_model.lip_encoder, score_model=ema_model.score_model, formulation=formulation,
        spectrogram=config.spectrogram, sampler=config.sampler, crop_size=config.data.crop_size,
        audio_visual=audio_visual, enhancement=config.enhancement, mouth_model=mouths)
    return save_model_folder(components, output, write_extra=write_config)


def training_mouth_model(config: AVDiffConfig) -> MouthModel | None:
    """The Gaussian of the training manifest's mouth crops (`avdiff.mouth.mouth_model`), or None,
    saying why, when the data is gone or too small (the folder then scores the lips without it)."""
    manifests = config.data.train_manifest
    manifests = [] if manifests is None else [manifests] if isinstance(manifests, str) else list(manifests)
    try:
        return fit_from_manifests(manifests, config.data.crop_size)
    except (InputError, OSError, ValueError) as error:
        logger.warning("no mouth model in the exported folder (%s); `avdiff mouth-model` adds one later",
                       str(error).splitlines()[0])
        return None


def export_checkpoint(run_dir: str | Path, checkpoint: str, output: str | Path) -> Path:
    """The EMA weights of `checkpoint` ("latest" or a folder) of `run_dir` as a model folder at `output`."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_NAME).is_file():
        raise InputError(f"{run_dir}: no {CONFIG_NAME}; not an avdiff training run folder")
    folder = ckpt.resolve_resume(run_dir, checkpoint)
    config = load_config(AVDiffConfig, run_dir / CONFIG_NAME)
    state = ckpt.read_state(folder)
    audio_visual = _audio_visual(state, folder, config)
    formulation = build_formulation(config.diffusion, sigma_data=state.sigma_data)
    ema = ExponentialMovingAverage(training_model(config, formulation), config.training.ema_decay)
    ema.load_state_dict(load_file(str(folder / ckpt.EMA_NAME)))
    return export_model(ema.module, formulation, config, audio_visual, Path(output))


def _audio_visual(state: ckpt.TrainerState, folder: Path, config: AVDiffConfig) -> bool:
    """Whether the run's data had video: as the checkpoint records it, else (a checkpoint saved
    before avdiff recorded it) from the training manifests, saying so."""
    if state.audio_visual is not None:
        return state.audio_visual
    manifest = config.data.train_manifest
    logger.warning("%s does not record whether the run had video (saved by an older avdiff); "
                   "reading the training data (%s) to find out", folder, manifest)
    try:
        return AVCropDataset(manifest, config.data, config.spectrogram).has_video
    except InputError as error:
        raise InputError(f"{folder} does not record whether the run had video (saved by an older avdiff) and "
                         f"the training data cannot tell: {error}. Restore data.train_manifest, or export a "
                         "checkpoint saved by this version") from error
