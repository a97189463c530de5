"""The model folder: everything needed to sample with a trained model, safetensors only.

```
MODEL/
  avdiff_pipeline.json     index: components, spectrogram + video settings, default sampler and
                           enhancement settings, version
  lip_encoder/             config.json + diffusion_pytorch_model.safetensors
  score_model/             config.json + diffusion_pytorch_model.safetensors
  diffusion/               diffusion_config.json (formulation with the measured sigma_data)
```
Written to a temporary folder and renamed, so a crash never leaves half a model behind.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

import yaml
from torch import nn

from avdiff import __version__
from avdiff.config.loader import from_dict, to_dict
from avdiff.config.schema import EnhancementConfig, SamplerConfig, SpectrogramConfig
from avdiff.diffusion.formulation import CONFIG_NAME as DIFFUSION_CONFIG_NAME
from avdiff.diffusion.formulation import DiffusionFormulation, load_formulation
from avdiff.diffusion.samplers import sampler_options, sampler_spec
from avdiff.errors import InputError
from avdiff.timegrid import SAMPLE_RATE, STFT_HOP_LENGTH, VIDEO_FPS
from avdiff.models.backbones import backbone_class
from avdiff.models.lip_encoder import LipEncoder
from avdiff.mouth.mouth_model import FILE_NAME as MOUTH_MODEL_FILE
from avdiff.mouth.mouth_model import MouthModel, load_beside
from avdiff.plugins import load_plugins

INDEX_NAME = "avdiff_pipeline.json"
DIFFUSION_PIPELINE = "AVDiffusionPipeline"  # the index's _class_name of a diffusion model folder
VAE_PIPELINE = "AVVAEPipeline"  # ... and of a speech VAE's (avdiff.pipeline.vae_folder)
TRAINING_CONFIG_NAME = "config.yaml"  # the resolved training config export writes beside the components
COMPONENTS = ("lip_encoder", "score_model", "diffusion")
# Sampler keys that older model folders kept beside `name` and `steps` (now under `options`).
LEGACY_SAMPLER_KEYS = ("snr", "corrector_steps", "churn", "churn_sigma_min", "churn_sigma_max", "noise_inflation")


@dataclass
class ModelComponents:
    """The parts of a trained avdiff model and the settings it was trained with."""

    lip_encoder: LipEncoder
    score_model: nn.Module  # a registered backbone (avdiff.models.backbones)
    formulation: DiffusionFormulation
    spectrogram: SpectrogramConfig
    sampler: SamplerConfig
    crop_size: int = 88
    # False: trained on audio-only speech, so the lip encoder never learned anything and the
    # model is a speech prior for audio-only enhancement (video inputs are ignored).
    audio_visual: bool = True
    # Defaults of `enhance` with this model (folders from before it existed: the schema's).
    enhancement: EnhancementConfig = field(default_factory=EnhancementConfig)
    # the Gaussian of the lip encoder's training crops, for the lips' reliability (None: not fitted)
    mouth_model: MouthModel | None = None

    def index(self) -> dict[str, Any]:
        """The content of `avdiff_pipeline.json`."""
        return {
            "_class_name": DIFFUSION_PIPELINE,
            "avdiff_version": __version__,
            "components": {
                "lip_encoder": ["avdiff", type(self.lip_encoder).__name__],
                "score_model": ["avdiff", type(self.score_model).__name__],
                "diffusion": ["avdiff", type(self.formulation).__name__],
            },
            "spectrogram": to_dict(self.spectrogram),
            "sampler": to_dict(self.sampler),
            "enhancement": to_dict(self.enhancement),
            "video": {"fps": VIDEO_FPS, "crop_size": self.crop_size},
            "audio_visual": self.audio_visual,
        }


def save_model_folder(components: ModelComponents, path: str | Path,
                      write_extra: Callable[[Path], None] | None = None) -> Path:
    """Write `components` to `path` (replacing it atomically if it exists); `write_extra(folder)`
    adds files (the training config) before the folder is renamed into place, so they are never missing."""
    def write(folder: Path) -> None:
        components.lip_encoder.save_pretrained(folder / "lip_encoder", safe_serialization=True)
        if components.mouth_model is not None:
            components.mouth_model.save(folder / "lip_encoder" / MOUTH_MODEL_FILE)
        components.score_model.save_pretrained(folder / "score_model", safe_serialization=True)
        components.formulation.save_config(folder / "diffusion")
        (folder / INDEX_NAME).write_text(json.dumps(components.index(), indent=2) + "\n")

    return write_folder_atomically(path, write, write_extra)


def write_folder_atomically(path: str | Path, write: Callable[[Path], None],
                            write_extra: Callable[[Path], None] | None = None) -> Path:
    """`write(folder)` then `write_extra(folder)` into a temporary folder, renamed to `path` (an
    existing one replaced) only when complete, so a crash never leaves half a model behind."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    write(tmp)
    if write_extra is not None:
        write_extra(tmp)
    if path.exists():
        old = path.with_name(f".{path.name}.old")
        if old.exists():
            shutil.rmtree(old)
        path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old)
    else:
        tmp.rename(path)
    return path


def load_model_folder(path: str | Path) -> ModelComponents:
    """Load a model folder, building the classes its index names, with an error naming whatever
    is missing, unreadable or not what this version of avdiff can run."""
    load_plugins()  # a plug-in's backbone, sampler or method may be what the folder names
    path = Path(path)
    index = _read_index(path)
    source = str(path / INDEX_NAME)
    score_class = _component_class(index, "score_model", source)
    try:
        lip_encoder = LipEncoder.from_pretrained(path / "lip_encoder")
        score_model = score_class.from_pretrained(path / "score_model")
    except (OSError, ValueError, RuntimeError) as error:
        raise InputError(f"{path}: cannot load model weights ({str(error).splitlines()[0]})") from error
    formulation = load_formulation(path / "diffusion")
    if _component_name(index, "diffusion", source) != type(formulation).__name__:
        raise InputError(f"{source}: the index names diffusion class {_component_name(index, 'diffusion', source)!r} "
                         f"but diffusion/ holds a {type(formulation).__name__}")
    sampler = from_dict(SamplerConfig, _sampler_section(index.get("sampler")), source, "sampler.")
    try:
        sampler_options(sampler.name, sampler.options)
    except ValueError as error:
        raise InputError(f"{source}: {error}") from error
    spectrogram = from_dict(SpectrogramConfig, index.get("spectrogram"), source, "spectrogram.")
    check_trained_spectrogram(path, spectrogram)
    return ModelComponents(
        lip_encoder=lip_encoder.eval(),
        score_model=score_model.eval(),
        formulation=formulation,
        spectrogram=spectrogram,
        sampler=sampler,
        crop_size=index_crop_size(index),
        audio_visual=audio_visual_flag(index, source),
        # checked against the registered posterior methods; sections from before methods had their
        # own settings are read through EnhancementConfig.upgrade_legacy_keys
        enhancement=from_dict(EnhancementConfig, index.get("enhancement"), source, "enhancement."),
        mouth_model=load_beside(path / "lip_encoder"),
    )


def index_crop_size(index: dict[str, Any]) -> int:
    """The mouth-crop size a folder's index records (88, lip reading's, for folders from before it did)."""
    return int(index.get("video", {}).get("crop_size", 88))


def audio_visual_flag(index: dict[str, Any], source: str) -> bool:
    """The index's audio_visual flag; folders from before it existed are audio-visual."""
    value = index.get("audio_visual", True)
    if not isinstance(value, bool):
        raise InputError(f"{source}: audio_visual must be true or false, got {value!r}")
    return value


def pipeline_class_name(path: str | Path) -> str:
    """The `_class_name` a model folder's index records (AVDiffusionPipeline for folders without
    one); an error naming what is missing or unreadable."""
    return str(read_index_json(Path(path)).get("_class_name", DIFFUSION_PIPELINE))


def read_index_json(path: Path) -> dict[str, Any]:
    """The JSON object of the folder's index, with an error naming what is missing or unreadable."""
    if not path.is_dir():
        raise InputError(f"{path}: model folder not found")
    index_path = path / INDEX_NAME
    if not index_path.is_file():
        raise InputError(f"{path}: no {INDEX_NAME}; not an avdiff model folder (export one with `avdiff train`)")
    try:
        index = json.loads(index_path.read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"{index_path}: not valid JSON ({error})") from error
    if not isinstance(index, dict):
        raise InputError(f"{index_path}: expected a JSON object")
    return index


def _read_index(path: Path) -> dict[str, Any]:
    """The folder's index, after checking every component's files are there."""
    index = read_index_json(path)
    index_path = path / INDEX_NAME
    if index.get("_class_name") == VAE_PIPELINE:
        raise InputError(f"{path}: a speech VAE ({VAE_PIPELINE}), not a diffusion model; open it with "
                         "avdiff.pipeline.loading.load_pipeline (the CLI does)")
    for name, marker in (("lip_encoder", "config.json"), ("score_model", "config.json"),
                         ("diffusion", DIFFUSION_CONFIG_NAME)):
        if not (path / name / marker).is_file():
            raise InputError(f"{path}: component {name!r} is missing ({name}/{marker} not found)")
    for name in ("lip_encoder", "score_model"):
        if not list((path / name).glob("*.safetensors")):
            raise InputError(f"{path}: component {name!r} has no .safetensors weights")
    _component_class(index, "lip_encoder", str(index_path))
    check_index_fields(index, str(index_path))
    return index


INDEX_KEYS = ("_class_name", "avdiff_version", "components", "spectrogram", "sampler", "enhancement", "video",
              "audio_visual")


def check_index_fields(index: dict[str, Any], source: str, class_name: str = DIFFUSION_PIPELINE,
                        keys: tuple[str, ...] = INDEX_KEYS) -> None:
    """Refuse an index this avdiff would misread: unknown keys, another pipeline class, another frame rate."""
    unknown = sorted(set(index) - set(keys))
    if unknown:
        raise InputError(f"{source}: unknown key(s) {', '.join(unknown)} (known: {', '.join(keys)}); "
                         "the folder was written by another program or a newer avdiff")
    if index.get("_class_name", DIFFUSION_PIPELINE) != class_name:
        raise InputError(f"{source}: _class_name is {index['_class_name']!r}, not {class_name}")
    fps = index.get("video", {}).get("fps", VIDEO_FPS)
    if fps != VIDEO_FPS:
        raise InputError(f"{source}: video.fps is {fps}, but avdiff's time grid is {VIDEO_FPS} frames/s "
                         "(avdiff.timegrid); this model cannot be run")
    spectrogram = index.get("spectrogram") or {}
    for key, grid_value in (("sample_rate", SAMPLE_RATE), ("hop_length", STFT_HOP_LENGTH)):
        if spectrogram.get(key, grid_value) != grid_value:
            raise InputError(f"{source}: spectrogram.{key} is {spectrogram[key]}, but avdiff's time grid has "
                             f"{grid_value} (avdiff.timegrid); this model cannot be run")


def check_trained_spectrogram(path: Path, spectrogram: SpectrogramConfig) -> None:
    """The index's STFT settings must be the ones the network was trained with, which the training
    config beside it records (`config.yaml`, written by export); folders without one are not checked."""
    config_path = path / TRAINING_CONFIG_NAME
    if not config_path.is_file():
        return
    try:
        trained = (yaml.safe_load(config_path.read_text()) or {}).get("spectrogram") or {}
    except (yaml.YAMLError, AttributeError) as error:
        raise InputError(f"{config_path}: not a readable training config ({str(error).splitlines()[0]})") from error
    recorded = to_dict(spectrogram)
    differing = sorted(k for k, v in trained.items() if k in recorded and recorded[k] != v)
    if differing:
        details = ", ".join(f"{k} {recorded[k]!r} in {INDEX_NAME} but {trained[k]!r} in training" for k in differing)
        raise InputError(f"{path}: the index's spectrogram settings differ from the ones the network was trained "
                         f"with ({details}); restore {INDEX_NAME} or re-export the model")


def _component_name(index: dict[str, Any], name: str, source: str) -> str:
    """The class name the index records for component `name` (["avdiff", class name])."""
    entry = index.get("components", {}).get(name)
    if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(part, str) for part in entry)):
        raise InputError(f"{source}: components.{name} must be [library, class name], got {entry!r}")
    return entry[1]


def _component_class(index: dict[str, Any], name: str, source: str) -> type:
    """The class to build component `name` with: the lip encoder, or a registered backbone."""
    class_name = _component_name(index, name, source)
    if name == "lip_encoder":
        if class_name != LipEncoder.__name__:
            raise InputError(f"{source}: unknown lip encoder class {class_name!r} (this avdiff has LipEncoder)")
        return LipEncoder
    try:
        return backbone_class(class_name)
    except KeyError as error:
        raise InputError(f"{source}: {error.args[0]}; import the module that registers it first") from error


def _sampler_section(section: Any) -> Any:
    """The index's sampler section, with the keys of older folders moved under `options`."""
    if not isinstance(section, dict) or not any(key in section for key in LEGACY_SAMPLER_KEYS):
        return section
    section = dict(section)
    legacy = {key: section.pop(key) for key in LEGACY_SAMPLER_KEYS if key in section}
    known = sampler_spec(section.get("name", SamplerConfig.name)).options
    section["options"] = {**{k: v for k, v in legacy.items() if k in known and v != known[k]},
                          **section.get("options", {})}
    return section
