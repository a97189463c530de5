"""What one generation or enhancement run will do, resolved once: the plan.

A model folder records its defaults (sampler, steps, guidance; enhancement method, its options,
chunking); a caller may override any of them. `generation_plan` and `enhancement_plan` merge the
two into one frozen, fully resolved plan, which `AVDiffusionPipeline.generate` / `enhance` run,
every output carries as `.plan`, the CLI writes to `*_settings.yaml`, `avdiff serve` shows and
the demo report prints. Nothing above the pipeline needs the model's defaults to learn what ran.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from avdiff.audio.chunks import ENHANCEMENT_OVERLAP_FRAMES, plan_chunks, plan_even_chunks
from avdiff.config.loader import to_dict
from avdiff.config.schema import EnhancementConfig, SamplerConfig
from avdiff.diffusion import samplers
from avdiff.errors import InputError
from avdiff.posterior.registry import METHODS, MethodEntry, method_entry

# Long inputs run in chunks of STFT frames (avdiff.audio.chunks); generation carries the voice
# over long overlaps, enhancement cross-fades short ones (ENHANCEMENT_OVERLAP_FRAMES).
GENERATION_CHUNK_FRAMES = 1000
GENERATION_OVERLAP_FRAMES = 100


@dataclass(frozen=True)
class GenerationPlan:
    """A fully resolved video-to-speech run: the sampler with every option, and the chunking."""

    sampler: SamplerConfig
    num_samples: int = 1
    chunk_frames: int = GENERATION_CHUNK_FRAMES
    overlap_frames: int = GENERATION_OVERLAP_FRAMES

    @property
    def network_calls_per_chunk(self) -> int:
        """Sampler calls per chunk (guidance runs both branches inside one call)."""
        return samplers.network_calls_per_run(self.sampler)

    def describe(self) -> str:
        """One line for people: sampler, steps, guidance (and where it stops)."""
        below = (f" at sigma >= {self.sampler.guidance_min_sigma:g} sigma_data"
                 if self.sampler.guidance_min_sigma > 0 and self.sampler.guidance_scale != 1 else "")
        start = (f", from a rendition at {self.sampler.pitch_hz:g} Hz noised to {self.sampler.start_sigma:g} sigma_data"
                 if self.sampler.start == "rendition" else "")
        return (f"sampler {self.sampler.name}, {self.sampler.steps} steps, guidance {self.sampler.guidance_scale:g}"
                f"{below}{start}")

    def to_dict(self) -> dict[str, Any]:
        return {"sampler": self.sampler.name, "steps": self.sampler.steps,
                "guidance_scale": self.sampler.guidance_scale, "guidance_min_sigma": self.sampler.guidance_min_sigma,
                "sampler_options": dict(self.sampler.options), "start": self.sampler.start,
                "start_sigma": self.sampler.start_sigma, "pitch_hz": self.sampler.pitch_hz,
                "num_samples": self.num_samples, "chunk_frames": self.chunk_frames,
                "overlap_frames": self.overlap_frames}


@dataclass(frozen=True)
class EnhancementPlan:
    """A fully resolved enhancement run: the method (or preset) asked for, the method's settings
    with every option, guidance of the lips, and the chunking."""

    method: str
    settings: Any
    guidance_scale: float = 1.0
    chunk_frames: int = EnhancementConfig.chunk_frames
    overlap_frames: int = ENHANCEMENT_OVERLAP_FRAMES
    batch_size: int = EnhancementConfig.batch_size
    even_chunks: bool = EnhancementConfig.even_chunks
    entry: MethodEntry = field(default=None, compare=False, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.entry is None:
            object.__setattr__(self, "entry", method_entry(self.method))

    def build_method(self) -> Any:
        """The registered method's object, ready to run chunks."""
        return self.entry.method_class(self.settings)

    def chunks(self, num_frames: int) -> list[tuple[int, int]]:
        """The (start, end) STFT-frame chunks an input of `num_frames` is enhanced in."""
        plan = plan_even_chunks if self.even_chunks else plan_chunks
        return plan(num_frames, self.chunk_frames, self.overlap_frames)

    def describe(self) -> str:
        """One line for people: method (and the method a preset runs), steps, samples, guidance."""
        runs = self.entry.method_class.name
        method = self.method if runs == self.method else f"{self.method} ({runs})"
        guidance = f", guidance {self.guidance_scale:g}" if self.entry.method_class.family == "diffusion" else ""
        return f"{method}, {self.entry.method_class.cost(self.settings)}{guidance}"

    def to_dict(self) -> dict[str, Any]:
        runs = self.entry.method_class.name
        return {"method": self.method, **({"runs": runs} if runs != self.method else {}),
                "options": to_dict(self.settings), "guidance_scale": self.guidance_scale,
                "chunk_frames": self.chunk_frames, "overlap_frames": self.overlap_frames,
                "even_chunks": self.even_chunks, "batch_size": self.batch_size}


def generation_plan(defaults: SamplerConfig, sampler: str | None = None, steps: int | None = None,
                    guidance_scale: float | None = None, sampler_options: Mapping[str, Any] | None = None,
                    num_samples: int = 1, chunk_frames: int = GENERATION_CHUNK_FRAMES,
                    overlap_frames: int = GENERATION_OVERLAP_FRAMES,
                    guidance_min_sigma: float | None = None, start: str | None = None,
                    start_sigma: float | None = None, pitch_hz: float | None = None) -> GenerationPlan:
    """The model's sampler `defaults` with the overrides given; another sampler starts from its
    own default options. Bad values (0 steps, NaN guidance, an option the sampler lacks, an
    unknown start) raise."""
    config = defaults
    if sampler is not None and sampler != config.name:
        config = replace(config, name=sampler, options={})
    options = {**config.options, **(sampler_options or {})}
    config = replace(config, options=samplers.sampler_options(config.name, options),  # every option, defaults filled in
                     steps=config.steps if steps is None else steps,
                     guidance_scale=config.guidance_scale if guidance_scale is None else guidance_scale,
                     guidance_min_sigma=config.guidance_min_sigma if guidance_min_sigma is None else guidance_min_sigma,
                     start=config.start if start is None else start,
                     start_sigma=config.start_sigma if start_sigma is None else start_sigma,
                     pitch_hz=config.pitch_hz if pitch_hz is None else pitch_hz)
    _check_counts(num_samples=num_samples, chunk_frames=chunk_frames)
    if not 0 <= overlap_frames < chunk_frames:
        raise ValueError(f"overlap_frames must be in 0 .. chunk_frames - 1, got {overlap_frames}")
    return GenerationPlan(config, num_samples, chunk_frames, overlap_frames)


def enhancement_plan(defaults: EnhancementConfig, method: str | None = None, steps: int | None = None,
                     guidance_scale: float | None = None, options: Mapping[str, Any] | Any | None = None,
                     chunk_frames: int | None = None, overlap_frames: int | None = None,
                     batch_size: int | None = None, family: str = "diffusion") -> EnhancementPlan:
    """The model's enhancement `defaults` with the overrides given.

    `method` is a registered method or preset (default: the model's). The model's recorded
    `options` apply to its own method only; another method starts from its registered defaults
    (a preset from its own settings). `options` (a mapping, or an instance of the method's
    settings class) and `steps` override them; unknown options and bad values raise, and so does a
    method of another model family than `family` (the model's: diffusion or vae)."""
    if steps is not None and isinstance(options, Mapping) and "steps" in options:
        raise ValueError("give steps once: as steps= or in options, not both")
    name = method or defaults.method
    entry = method_entry(name)
    check_family(name, entry, family)
    if steps is not None and family != "diffusion":
        raise InputError(f"steps are the diffusion methods' reverse-process levels; {name!r} has em_iterations")
    recorded = defaults.options if name == defaults.method else {}
    if options is None or isinstance(options, Mapping):
        settings = entry.settings({**recorded, **(options or {})}, source=f"options of method {name!r}")
    else:
        settings = entry.settings(options)
    if steps is not None:
        settings = replace(settings, steps=steps)
    guidance = defaults.guidance_scale if guidance_scale is None else guidance_scale
    if not math.isfinite(guidance):
        raise ValueError(f"guidance_scale must be a finite number, got {guidance}")
    chunk = defaults.chunk_frames if chunk_frames is None else chunk_frames
    overlap = ENHANCEMENT_OVERLAP_FRAMES if overlap_frames is None else overlap_frames
    batch = defaults.batch_size if batch_size is None else batch_size
    _check_counts(chunk_frames=chunk, batch_size=batch)
    if not 0 <= overlap < chunk:
        raise ValueError(f"overlap_frames must be in 0 .. chunk_frames - 1, got {overlap}")
    return EnhancementPlan(name, settings, guidance, chunk, overlap, batch, defaults.even_chunks, entry)


def check_family(name: str, entry: MethodEntry, family: str) -> None:
    """An InputError when method `name` runs on another kind of model than this one (`family`)."""
    if entry.method_class.family == family:
        return
    own = [n for n, e in METHODS.items() if e.method_class.family == family]
    raise InputError(f"method {name!r} runs on a {entry.method_class.family} model, and this is a {family} model "
                     f"(its methods: {', '.join(own)})")


def _check_counts(**counts: int) -> None:
    for name, value in counts.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
