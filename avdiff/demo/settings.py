"""What `avdiff demo` does (its settings, one per command-line option) and how it logs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from avdiff.config import packaged_config
from avdiff.pipeline.shipped import DEFAULT_AUDIO_VISUAL

DEFAULT_CONFIG = packaged_config("synth-cpu")  # avdiff/configs/: inside the package, also when installed
DEFAULT_SHIPPED_MODEL = DEFAULT_AUDIO_VISUAL  # the shipped video-to-speech + audio-visual model
NO_SHIPPED_MODEL = "none"  # --shipped-model none: run the demo's own model only


@dataclass
class DemoSettings:
    """What the demo does; every field is a command-line option of `avdiff demo`."""

    output: Path
    config: Path = DEFAULT_CONFIG
    overrides: list[str] = field(default_factory=list)
    device: str = "cpu"
    num_utterances: int = 800
    seed: int = 0
    workers: int = 2
    max_steps: int | None = None  # None: the config's training.max_steps (the run is bounded by steps)
    max_train_minutes: float | None = None  # opt-in wall-clock bound; None keeps results machine-independent
    shipped_model: str = DEFAULT_SHIPPED_MODEL  # a shipped model's name, a model folder, or "none"
    test_clips: int = 6
    snrs: tuple[float, ...] = (0.0, 5.0)
    method: str = "udiffse+"
    generate_steps: int | None = None
    enhance_steps: int | None = None
    guidance: float = 2.0  # classifier-free guidance of video-to-speech (LipVoicer uses 2)


def log(message: str) -> None:
    """One `[demo]` line that does not break the progress bars."""
    tqdm.write(f"[demo] {message}")
