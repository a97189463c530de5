"""Target-speaker extraction with a trained audio-visual model: the pipeline side of `avdiff extract`.

    pipe = AVDiffusionPipeline.from_pretrained("v2s-context")
    out = extract(pipe, "two_talkers.wav", video="target_face.mp4")        # out.target, out.interferer
    plan = extraction_plan(pipe, steps=16, options={"num_samples": 1})      # resolved, frozen

The mixture is read, normalised, chunked and cross-faded exactly as `pipeline.enhance` does; each
chunk goes through `avdiff.posterior.extraction.JointExtraction` with the target's lips as one
source's condition and, for the interferer, its own video or the masked (audio-only) condition.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from avdiff.audio.chunks import plan_chunks
from avdiff.config.loader import from_dict, to_dict
from avdiff.config.schema import EnhancementConfig
from avdiff.diffusion.noise import make_generators
from avdiff.errors import InputError
from avdiff.landmarks import DEFAULT_BACKEND
from avdiff.mouth.reliability import USABLE_SCORE
from avdiff.pipeline.lip_evidence import lip_evidence
from avdiff.pipeline.pipeline import AVDiffusionPipeline, item_seed, unreliable_note
from avdiff.pipeline.plans import ENHANCEMENT_OVERLAP_FRAMES
from avdiff.pipeline.shipped import LIP_AGREEMENT_BY_DEFAULT
from avdiff.posterior import power
from avdiff.posterior.extraction import ExtractionProblem, ExtractionSettings, JointExtraction

# Classifier-free guidance of the target's lips in extraction (the interferer's prior is unguided
# unless it has a video): chosen on tuning mixtures (BENCHMARKS.md, "Target-speaker extraction").
EXTRACTION_GUIDANCE = 1.0


@dataclass(frozen=True)
class ExtractionPlan:
    """A fully resolved extraction run: the joint pass's settings, the lips' guidance, the chunking."""

    settings: ExtractionSettings
    guidance_scale: float = EXTRACTION_GUIDANCE
    chunk_frames: int = EnhancementConfig.chunk_frames
    overlap_frames: int = ENHANCEMENT_OVERLAP_FRAMES
    batch_size: int = EnhancementConfig.batch_size

    def describe(self) -> str:
        s = self.settings
        return f"joint two-source pass, {s.steps} steps x {s.num_samples} samples, guidance {self.guidance_scale:g}"

    def to_dict(self) -> dict[str, Any]:
        return {"options": to_dict(self.settings), "guidance_scale": self.guidance_scale,
                "chunk_frames": self.chunk_frames, "overlap_frames": self.overlap_frames, "batch_size": self.batch_size}


@dataclass
class ExtractionOutput:
    """The target's and the interferer's estimates (N,) float32 at the input's rate and length."""

    target: np.ndarray
    interferer: np.ndarray
    sample_rate: int
    network_calls: int
    plan: ExtractionPlan
    notes: list[str] = field(default_factory=list)


def extraction_plan(pipeline: AVDiffusionPipeline, steps: int | None = None, guidance_scale: float | None = None,
                    options: Mapping[str, Any] | None = None, chunk_frames: int | None = None,
                    batch_size: int | None = None) -> ExtractionPlan:
    """The joint pass's defaults with `options` (unknown ones and bad values raise) and `steps`; the
    chunking follows the model's enhancement defaults."""
    if not isinstance(pipeline, AVDiffusionPipeline):
        raise InputError("extraction samples two sources from a diffusion speech prior; this model is a "
                         f"{type(pipeline).__name__} (use a diffusion model, e.g. v2s)")
    if steps is not None and options and "steps" in options:
        raise ValueError("give steps once: as steps= or in options, not both")
    settings = from_dict(ExtractionSettings, {**to_dict(ExtractionSettings()), **(options or {})},
                         "extraction options", "")
    if steps is not None:
        settings = dataclasses.replace(settings, steps=steps)
    defaults = pipeline.components.enhancement
    chunk = defaults.chunk_frames if chunk_frames is None else chunk_frames
    batch = defaults.batch_size if batch_size is None else batch_size
    if chunk <= ENHANCEMENT_OVERLAP_FRAMES or batch < 1:
        raise ValueError(f"chunk_frames must exceed {ENHANCEMENT_OVERLAP_FRAMES} and batch_size be >= 1")
    guidance = EXTRACTION_GUIDANCE if guidance_scale is None else float(guidance_scale)
    if not np.isfinite(guidance):
        raise ValueError(f"guidance_scale must be a finite number, got {guidance}")
    return ExtractionPlan(settings, guidance, chunk, ENHANCEMENT_OVERLAP_FRAMES, batch)


@torch.no_grad()
def extract(pipeline: AVDiffusionPipeline, mixture: str | Path | np.ndarray, video: Any, *,
            sample_rate: int | None = None, interferer_video: Any = None, plan: ExtractionPlan | None = None,
            seed: int = 0, show_progress: bool = False, landmarks: str = DEFAULT_BACKEND,
            landmark_weights: str | Path | None = None, require_face: bool = True,
            lip_agreement: bool = LIP_AGREEMENT_BY_DEFAULT) -> ExtractionOutput:
    """The talker whose lips `video` shows, from `mixture` (with the interferer's estimate);
    `lip_agreement` as in `AVDiffusionPipeline.enhance`.

    `require_face=False` lets a video without any usable face through (both sources then have the
    audio-only prior and the choice of talker is a coin toss: benchmarks run it as the control)."""
    if not pipeline.components.audio_visual:
        raise InputError("this model is an audio-only speech prior: extraction needs the target's lips; "
                         "use an audio-visual model")
    plan = plan or extraction_plan(pipeline)
    audio = pipeline.noisy_audio(mixture, sample_rate)
    notes = list(audio.notes)
    mouth = pipeline.load_video(video, landmarks, landmark_weights)
    if require_face and not mouth.face_ok.any():
        raise InputError("no frame of the target's video has a usable face: without its lips the target "
                         "cannot be told from the other talkers")
    notes += pipeline.check_lengths(mouth, audio)
    other = None if interferer_video is None else pipeline.load_video(interferer_video, landmarks, landmark_weights)
    if other is not None:
        notes += pipeline.check_lengths(other, audio)
    if audio.is_silent:
        silence = np.zeros(audio.source_length, np.float32)
        return ExtractionOutput(silence, silence.copy(), audio.source_rate, 0, plan, notes)
    peak, waveform = pipeline.normalised_waveform(audio)
    frames = pipeline.transform.num_frames(len(audio.samples))
    chunks = plan_chunks(frames, plan.chunk_frames, plan.overlap_frames)
    if lip_agreement:
        mouth = pipeline.heard_agreement(mouth, waveform)[0]
    notes += unreliable_note(mouth)
    y = torch.nn.functional.pad(pipeline.transform.encode(waveform.unsqueeze(0)), (0, chunks[-1][1] - frames))
    scale = float(power(y).max().clamp_min(1e-20).sqrt()) if plan.settings.normalize == "spectrogram_max" else 1.0
    conditions = [_condition(pipeline, mouth, chunks[-1][1], frames),
                  _condition(pipeline, other, chunks[-1][1], frames) if other is not None else (None, None, None)]
    targets, interferers, calls = _extract_chunks(pipeline, y / scale, conditions, chunks, plan, seed, show_progress)
    outputs = []
    for pieces in (targets, interferers):
        spec = pipeline._join(pieces, chunks, frames, scale)
        outputs.append(pipeline.at_source_rate(pipeline.transform.istft(spec, len(audio.samples))[0].cpu().numpy() * peak,
                                               audio))
    return ExtractionOutput(outputs[0], outputs[1], audio.source_rate, calls, plan, notes)


def _condition(pipeline: AVDiffusionPipeline, mouth: Any, num_frames: int, frames: int) -> tuple[Tensor, ...]:
    """The lips' condition, mask and reliability over `num_frames` STFT frames (masked past the
    audio's `frames` and where the lips are unreliable, as enhancement masks them)."""
    cond, mask = pipeline.condition(mouth, num_frames, USABLE_SCORE)
    trust = pipeline.lip_trust(mouth, num_frames)
    assert cond is not None and mask is not None and trust is not None
    mask[..., frames:] = False
    return cond, mask, trust * mask


def _extract_chunks(pipeline: AVDiffusionPipeline, y: Tensor, conditions: list[tuple[Tensor | None, ...]],
                    chunks: list[tuple[int, int]], plan: ExtractionPlan, seed: int,
                    show_progress: bool) -> tuple[list[Tensor], list[Tensor], int]:
    """The joint pass over every chunk of y, `plan.batch_size` chunks at a time."""
    method = JointExtraction(plan.settings)
    targets: list[Tensor] = []
    interferers: list[Tensor] = []
    calls = 0
    for first in range(0, len(chunks), plan.batch_size):
        group = chunks[first : first + plan.batch_size]
        y_chunks = torch.cat([y[..., s:e] for s, e in group])
        sliced = [tuple(None if t is None else torch.cat([t[..., s:e] for s, e in group]) for t in pair)
                  for pair in conditions]
        generators = make_generators([item_seed(seed, first + i) for i in range(len(group))], pipeline.device)

        def denoiser_for(source: int, repeats: int) -> Any:
            cond, mask = (None if t is None else t.repeat_interleave(repeats, 0) for t in sliced[source][:2])
            return pipeline._denoiser_for(cond, mask, plan.guidance_scale if cond is not None else 1.0)

        cond, mask, trust = sliced[0]
        lips = lip_evidence(cond, mask, pipeline.lip_encoder.config.envelope_bands, pipeline.transform,
                            y_chunks.shape[-2], trust)
        problem = ExtractionProblem(y_chunks, lambda r: denoiser_for(0, r), lambda r: denoiser_for(1, r),
                                    pipeline.denoiser.formulation, generators, show_progress, lips)
        out = method.run(problem)
        calls += out.network_calls
        targets.extend(out.target.float().split(1))
        interferers.extend(out.interferer.float().split(1))
    return targets, interferers, calls
