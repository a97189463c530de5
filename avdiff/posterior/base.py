"""What a posterior method is: a class with a settings class and one `run(problem)`.

The pipeline hands every method the same `PosteriorProblem` (the compressed noisy spectrograms
of a batch of chunks, a denoiser factory, the formulation, one generator per chunk) and takes
back a `PosteriorOutput`. A method never sees files, chunking or the lips: the denoiser it is
given is already conditioned (or not); a method that uses what the lips say about the target
beyond that (`udiffse+lips`) finds it in `problem.lips`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor
from tqdm.auto import tqdm

from avdiff.posterior.input_noise import Compression
from avdiff.posterior.nmf import NoiseModel

if TYPE_CHECKING:  # annotations only: the registry (and `avdiff enhance --help`) load without diffusers
    from avdiff.diffusion.denoiser import DenoiserFn
    from avdiff.diffusion.formulation import DiffusionFormulation


@dataclass
class LipEvidence:
    """What the lips say about the target of each item, on y's grid.

    `speech_power` (B, F, T): the target's power per bin as the lip encoder's predicted envelope
    describes it, in y's compressed domain up to one gain per item (the envelope is of
    peak-normalised speech; the target's level in the mixture is unknown); `reliability` (B, T):
    how far to trust the lips at each frame, in [0, 1] (0 where there is no face).
    """

    speech_power: Tensor
    reliability: Tensor


@dataclass
class PosteriorProblem:
    """One batch to enhance.

    `y`: compressed noisy spectrograms (B, 2, F, T); `denoiser_for(r)` returns the (conditioned)
    denoiser for a batch where every item is repeated r times in a row (parallel samples run as
    one batch); `generators`: one per item; `lips`: what the lips say, when there are lips and
    the lip encoder predicts an envelope (else None); `compression`: how y was compressed from
    the linear STFT (for methods that look at the input's noise there).
    """

    y: Tensor
    denoiser_for: Callable[[int], DenoiserFn]
    formulation: DiffusionFormulation
    generators: Sequence[torch.Generator]
    show_progress: bool = False
    lips: LipEvidence | None = None
    compression: Compression = field(default_factory=Compression.default)

    def progress(self, total: int, name: str) -> tqdm:
        return tqdm(total=total, desc=name, disable=not self.show_progress, leave=False)


@dataclass
class PosteriorOutput:
    """The enhanced compressed spectrogram (B, 2, F, T), the noise model and the network calls;
    `report`: what the method decided per item from the input (name -> B values), e.g. its SNR."""

    sample: Tensor
    noise: NoiseModel
    network_calls: int
    report: dict[str, list[float]] = field(default_factory=dict)


class EnhancementMethod(ABC):
    """A registered enhancement method (`avdiff.posterior.registry.register_method`) of one model
    family: `diffusion` methods run on a score network (`PosteriorMethod`), `vae` methods on a
    speech VAE (`avdiff.posterior.vae_base.VAEMethod`); a pipeline runs the methods of its family.

    Subclasses set `settings_class` (a frozen dataclass with a default for every field; see
    avdiff.posterior.settings for the shared groups) and implement `run`.
    """

    name: ClassVar[str] = ""  # set by register_method
    family: ClassVar[str] = "diffusion"
    settings_class: ClassVar[type]

    def __init__(self, settings: Any = None) -> None:
        self.settings = self.settings_class() if settings is None else settings
        if not isinstance(self.settings, self.settings_class):
            raise TypeError(f"{type(self).__name__} takes {self.settings_class.__name__}, "
                            f"got {type(self.settings).__name__}")

    @classmethod
    def cost(cls, settings: Any) -> str:
        """What one run costs, for people: "12 steps x 2 samples"."""
        return f"{settings.steps} steps x {settings.num_samples} samples"

    @abstractmethod
    def run(self, problem: Any) -> Any:
        """Enhance the problem's noisy input."""


class PosteriorMethod(EnhancementMethod):
    """A diffusion posterior sampling method: a score network's prior and a likelihood of y."""

    family: ClassVar[str] = "diffusion"

    @abstractmethod
    def run(self, problem: PosteriorProblem) -> PosteriorOutput:
        """Enhance `problem.y`; the output has its shape."""
