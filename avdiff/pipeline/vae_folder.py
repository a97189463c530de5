"""The model folder of a speech VAE: the diffusion folder's format with a `vae` component.

```
MODEL/
  avdiff_pipeline.json     index: _class_name AVVAEPipeline, components, spectrogram, default
                           enhancement (a VAE method), video settings, audio_visual, version
  lip_encoder/             config.json + diffusion_pytorch_model.safetensors (frozen, from training)
  vae/                     config.json + diffusion_pytorch_model.safetensors (SpeechVAE)
  config.yaml              the training run's resolved config
```
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

from avdiff import __version__
from avdiff.config.loader import from_dict, to_dict
from avdiff.config.schema import EnhancementConfig, SpectrogramConfig
from avdiff.errors import InputError
from avdiff.models.lip_encoder import LipEncoder
from avdiff.models.speech_vae import SpeechVAE
from avdiff.mouth.mouth_model import FILE_NAME as MOUTH_MODEL_FILE
from avdiff.mouth.mouth_model import MouthModel, load_beside
from avdiff.pipeline.model_folder import (
    INDEX_NAME,
    VAE_PIPELINE,
    audio_visual_flag,
    check_index_fields,
    check_trained_spectrogram,
    index_crop_size,
    read_index_json,
    write_folder_atomically,
)
from avdiff.posterior.registry import method_entry
from avdiff.timegrid import VIDEO_FPS

VAE_INDEX_KEYS = ("_class_name", "avdiff_version", "components", "spectrogram", "enhancement", "video", "audio_visual")


@dataclass
class VAEComponents:
    """The parts of a trained speech VAE and the settings it was trained with."""

    lip_encoder: LipEncoder
    vae: SpeechVAE
    spectrogram: SpectrogramConfig
    enhancement: EnhancementConfig = field(default_factory=lambda: EnhancementConfig(method="vae-mcem"))
    crop_size: int = 88
    mouth_model: MouthModel | None = None  # as in ModelComponents

    @property
    def audio_visual(self) -> bool:
        """Whether the VAE reads the lips (an audio-only VAE ignores video)."""
        return self.vae.audio_visual

    def index(self) -> dict[str, Any]:
        return {
            "_class_name": VAE_PIPELINE,
            "avdiff_version": __version__,
            "components": {"lip_encoder": ["avdiff", type(self.lip_encoder).__name__],
                           "vae": ["avdiff", type(self.vae).__name__]},
            "spectrogram": to_dict(self.spectrogram),
            "enhancement": to_dict(self.enhancement),
            "video": {"fps": VIDEO_FPS, "crop_size": self.crop_size},
            "audio_visual": self.audio_visual,
        }


def check_vae_method(enhancement: EnhancementConfig, source: str) -> None:
    """A VAE folder's default method must be one of the VAE family's."""
    if method_entry(enhancement.method).method_class.family != "vae":
        raise InputError(f"{source}: enhancement.method {enhancement.method!r} is a diffusion method; a VAE model "
                         "runs vae-mcem or switching-vae")


def save_vae_folder(components: VAEComponents, path: str | Path,
                    write_extra: Callable[[Path], None] | None = None) -> Path:
    """Write `components` to `path`, atomically (see `write_folder_atomically`)."""
    check_vae_method(components.enhancement, str(path))

    def write(folder: Path) -> None:
        components.lip_encoder.save_pretrained(folder / "lip_encoder", safe_serialization=True)
        if components.mouth_model is not None:
            components.mouth_model.save(folder / "lip_encoder" / MOUTH_MODEL_FILE)
        components.vae.save_pretrained(folder / "vae")
        (folder / INDEX_NAME).write_text(json.dumps(components.index(), indent=2) + "\n")

    return write_folder_atomically(path, write, write_extra)


def load_vae_folder(path: str | Path) -> VAEComponents:
    """Load a VAE model folder, with an error naming whatever is missing, unreadable or not what
    this avdiff can run."""
    path = Path(path)
    index = read_index_json(path)
    source = str(path / INDEX_NAME)
    check_index_fields(index, source, VAE_PIPELINE, VAE_INDEX_KEYS)
    components = index.get("components") or {}
    for name, cls in (("lip_encoder", LipEncoder), ("vae", SpeechVAE)):
        if components.get(name) != ["avdiff", cls.__name__]:
            raise InputError(f"{source}: components.{name} must be ['avdiff', {cls.__name__!r}], got {components.get(name)!r}")
        if not (path / name / "config.json").is_file() or not list((path / name).glob("*.safetensors")):
            raise InputError(f"{path}: component {name!r} is missing (config.json and .safetensors weights)")
    try:
        lip_encoder, vae = LipEncoder.from_pretrained(path / "lip_encoder"), SpeechVAE.from_pretrained(path / "vae")
    except (OSError, ValueError, RuntimeError) as error:
        raise InputError(f"{path}: cannot load model weights ({str(error).splitlines()[0]})") from error
    spectrogram = from_dict(SpectrogramConfig, index.get("spectrogram"), source, "spectrogram.")
    check_trained_spectrogram(path, spectrogram)
    if audio_visual_flag(index, source) != vae.audio_visual:
        raise InputError(f"{source}: audio_visual is {index['audio_visual']} but the VAE "
                         f"{'reads' if vae.audio_visual else 'does not read'} the lips")
    enhancement = from_dict(EnhancementConfig, index.get("enhancement"), source, "enhancement.")
    check_vae_method(enhancement, source)
    return VAEComponents(lip_encoder.eval(), vae.eval(), spectrogram, enhancement,
                         index_crop_size(index), load_beside(path / "lip_encoder"))
