"""The model folder: everything needed to sample with a trained model, safetensors only.

```
MODEL/
  avdiff_pipeline.json     index: components, spectrogram + video settings, default sampler, version
  lip_encoder/             config.json + diffusion_pytorch_model.safetensors
  score_model/             config.json + diffusion_pytorch_model.safetensors
  diffusion/               diffusion_config.json (formulation with the measured sigma_data)
```
Written to a temporary folder and renamed, so a crash never leaves half a model behind.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avdiff import __version__
from avdiff.config.loader import from_dict, to_dict
from avdiff.config.schema import SamplerConfig, SpectrogramConfig
from avdiff.diffusion.formulation import CONFIG_NAME as DIFFUSION_CONFIG_NAME
from avdiff.diffusion.formulation import DiffusionFormulation, load_formulation
from avdiff.errors import InputError
from avdiff.models.lip_encoder import LipEncoder
from avdiff.models.score_unet import ScoreUNet

INDEX_NAME = "avdiff_pipeline.json"
COMPONENTS = ("lip_encoder", "score_model", "diffusion")


@dataclass
class ModelComponents:
    """The parts of a trained avdiff model and the settings it was trained with."""

    lip_encoder: LipEncoder
    score_model: ScoreUNet
    formulation: DiffusionFormulation
    spectrogram: SpectrogramConfig
    sampler: SamplerConfig
    crop_size: int = 88

    def index(self) -> dict[str, Any]:
        """The content of `avdiff_pipeline.json`."""
        return {
            "_class_name": "AVDiffusionPipeline",
            "avdiff_version": __version__,
            "components": {
                "lip_encoder": ["avdiff", type(self.lip_encoder).__name__],
                "score_model": ["avdiff", type(self.score_model).__name__],
                "diffusion": ["avdiff", type(self.formulation).__name__],
            },
            "spectrogram": to_dict(self.spectrogram),
            "sampler": to_dict(self.sampler),
            "video": {"fps": 25, "crop_size": self.crop_size},
        }


def save_model_folder(components: ModelComponents, path: str | Path) -> Path:
    """Write `components` to `path` (replacing it atomically if it exists)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    components.lip_encoder.save_pretrained(tmp / "lip_encoder", safe_serialization=True)
    components.score_model.save_pretrained(tmp / "score_model", safe_serialization=True)
    components.formulation.save_config(tmp / "diffusion")
    (tmp / INDEX_NAME).write_text(json.dumps(components.index(), indent=2) + "\n")
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
    """Load a model folder, with an error naming whatever is missing or unreadable."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: model folder not found")
    index_path = path / INDEX_NAME
    if not index_path.is_file():
        raise InputError(f"{path}: no {INDEX_NAME}; not an avdiff model folder (export one with training/train.py)")
    try:
        index = json.loads(index_path.read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"{index_path}: not valid JSON ({error})") from error
    for name, marker in (("lip_encoder", "config.json"), ("score_model", "config.json"),
                         ("diffusion", DIFFUSION_CONFIG_NAME)):
        if not (path / name / marker).is_file():
            raise InputError(f"{path}: component {name!r} is missing ({name}/{marker} not found)")
    for name in ("lip_encoder", "score_model"):
        if not list((path / name).glob("*.safetensors")):
            raise InputError(f"{path}: component {name!r} has no .safetensors weights")
    try:
        lip_encoder = LipEncoder.from_pretrained(path / "lip_encoder")
        score_model = ScoreUNet.from_pretrained(path / "score_model")
    except (OSError, ValueError, RuntimeError) as error:
        raise InputError(f"{path}: cannot load model weights ({str(error).splitlines()[0]})") from error
    source = str(index_path)
    return ModelComponents(
        lip_encoder=lip_encoder.eval(),
        score_model=score_model.eval(),
        formulation=load_formulation(path / "diffusion"),
        spectrogram=from_dict(SpectrogramConfig, index.get("spectrogram"), source, "spectrogram."),
        sampler=from_dict(SamplerConfig, index.get("sampler"), source, "sampler."),
        crop_size=int(index.get("video", {}).get("crop_size", 88)),
    )
