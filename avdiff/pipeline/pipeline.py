"""`AVDiffusionPipeline`: video-to-speech and diffusion-posterior-sampling enhancement.

    pipe = AVDiffusionPipeline.from_pretrained("runs/synth/model")
    speech = pipe.generate("talking_face.mp4", num_samples=2, seed=0)        # silent video -> speech
    clean = pipe.enhance("noisy.wav", video="talking_face.mp4", method="udiffse+")
    plan = pipe.enhancement_plan("udiffse-paper", steps=20)                 # resolved, frozen
    clean = pipe.enhance("noisy.wav", plan=plan); clean.plan.to_dict()      # what ran

`from_pretrained` takes a model folder or the name of a shipped model (`models/`).

Lip embeddings are computed once per clip (in overlapping windows for long videos) and sliced
for every chunk and network call. In enhancement, frames whose lips score below `USABLE_SCORE`
(`avdiff.mouth.reliability`; with `lip_agreement`, times their agreement with the sound,
`avdiff.pipeline.av_agreement`) get the null condition, as frames without a face do, and the
score reaches the posterior method (`LipEvidence.reliability`). Long inputs are processed in chunks of `chunk_frames` STFT
frames starting on video-frame boundaries: enhancement chunks are independent and run batched,
then cross-faded; generation chunks run one after another, each forced to agree with the end of
the previous one on their overlap (its denoised estimate is replaced there), so the voice
carries over. The network's memory depends on the chunk and batch sizes only; the whole-signal
STFT, its inverse and the chunk outputs grow with the duration (about 1 MB per second of audio;
chunks are joined one at a time, so no further whole-length copies are made).
Seeds are per item (sample, chunk): on the CPU, where the network also runs one item at a time,
a seed gives the same bits whatever `num_samples` or `batch_size` (`_denoiser_for`).
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from avdiff.audio.chunks import join_chunks, plan_chunks
from avdiff.audio.rendition import render
from avdiff.audio.spectrogram import SpectrogramTransform
from avdiff.diffusion.denoiser import Denoiser, DenoiserFn, guided_denoiser
from avdiff.diffusion.noise import make_generators
from avdiff.diffusion.samplers import sample_from_noise, sample_from_start
from avdiff.errors import InputError
from avdiff.inference import AUTO, TORCH, BackendChoice, choose_backend, score_network_for
from avdiff.inference.compiled import compile_network
from avdiff.inference.runtime import default_dtype
from avdiff.landmarks import DEFAULT_BACKEND
from avdiff.timegrid import SAMPLES_PER_FRAME
from avdiff.mouth.reliability import USABLE_SCORE
from avdiff.pipeline.inputs import MouthVideo
from avdiff.pipeline.lip_evidence import lip_evidence
from avdiff.pipeline.lip_front import LipFrontEnd
from avdiff.pipeline.model_folder import ModelComponents, load_model_folder, save_model_folder
from avdiff.pipeline.plans import EnhancementPlan, GenerationPlan, enhancement_plan, generation_plan
from avdiff.pipeline.shipped import LIP_AGREEMENT_BY_DEFAULT, resolve_model
from avdiff.posterior import PosteriorMethod, PosteriorProblem, power
from avdiff.posterior.input_noise import Compression

logger = logging.getLogger("avdiff.pipeline")


@dataclass
class GenerationOutput:
    """Generated speech: `audio` (num_samples, N) float32 at `sample_rate`, N = frames * 640;
    `plan` is what ran."""

    audio: np.ndarray
    sample_rate: int
    network_calls: int
    plan: GenerationPlan
    notes: list[str] = field(default_factory=list)


@dataclass
class EnhancementOutput:
    """Enhanced speech (N,) float32 at `sample_rate`: the input's rate and length; `plan` is what ran."""

    audio: np.ndarray
    sample_rate: int
    network_calls: int
    plan: EnhancementPlan
    notes: list[str] = field(default_factory=list)
    # switching-vae: each STFT frame's posterior probability of the audio-visual branch (None otherwise)
    switch: np.ndarray | None = None
    # what the method estimated from the input and chose by it, averaged over chunks (e.g. snr_db,
    # start_sigma, input_share; empty when it estimated nothing)
    input_report: dict[str, float] = field(default_factory=dict)


RENDITION_SEED_PART = -1  # item_seed(seed, -1): the rendition's excitation noise, apart from every sample's


def item_seed(seed: int, *parts: int) -> int:
    """A seed for one item (sample j of chunk k, ...), independent of how items are batched."""
    return zlib.crc32(np.array([seed, *parts], dtype=np.int64).tobytes())


class AVDiffusionPipeline(LipFrontEnd):
    """A trained avdiff model, ready to generate or enhance; see the module docstring."""

    def __init__(self, components: ModelComponents, device: str | torch.device = "cpu",
                 dtype: torch.dtype | None = None, backend: str = AUTO) -> None:
        self.components = components
        self.device = torch.device(device)
        self.dtype = dtype or default_dtype(self.device)
        self.transform = SpectrogramTransform(components.spectrogram)
        network, self.backend = score_network_for(components.score_model.to(self.device).eval(),
                                                  choose_backend(backend, self.device, self.dtype))
        if self.backend.note:
            logger.warning(self.backend.note)
        self.denoiser = Denoiser(network, components.formulation).to(self.device).eval()
        self.lip_encoder = components.lip_encoder.to(self.device).eval()

    # ------------------------------------------------------------------ folders
    @classmethod
    def from_pretrained(cls, model: str | Path, device: str | torch.device | None = "cpu",
                        dtype: torch.dtype | str | None = None, backend: str = AUTO) -> "AVDiffusionPipeline":
        """Load a model folder (see `avdiff.pipeline.model_folder`) or a shipped model by name
        (`avdiff.pipeline.shipped`); device None: cuda where there is one, else cpu (the CLI's
        default); dtype None: `default_dtype(device)`, or a name ("float32"); backend: the score
        network's engine (`avdiff.inference`: auto, torch or onnxruntime)."""
        device = resolve_device(device)
        dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        return cls(load_model_folder(resolve_model(model)), device=device, dtype=dtype, backend=backend)

    def save_pretrained(self, path: str | Path) -> Path:
        return save_model_folder(self.components, path)

    def compile(self, mode: str | None = None) -> None:
        """torch.compile the score network (`avdiff.inference.compiled`): on GPUs as CUDA graphs
        (`reduce-overhead`), on CPUs in torch's default mode; `mode` one of `COMPILE_MODES`.
        Compiling means torch: an ONNX Runtime backend gives way to it."""
        if self.backend.name != TORCH:
            logger.warning("--compile compiles the torch network: the score network runs in torch, not %s",
                           self.backend.name)
            self.backend = BackendChoice(TORCH)
        self.denoiser.network = compile_network(self.components.score_model, self.device.type, mode)

    def _denoiser_for(self, cond: Tensor | None, mask: Tensor | None, guidance_scale: float,
                      guidance_min_sigma: float = 0.0) -> DenoiserFn:
        """The guided denoiser of a batch (item i conditioned on cond[i]), under autocast; guidance
        only at noise levels of at least `guidance_min_sigma` sigma_data.

        On the CPU it runs one item at a time (each with its conditional and null branches): CPU
        convolutions round differently for different batch sizes, so batched calls would make a
        sample depend on how many items share its batch (`--num-samples`, `--batch-size`), against
        the per-item seeds' promise. One at a time costs nothing there (a batch of 4 v2s items of
        2 s, bf16: 0.31 s one by one, 0.35 s batched on one core; 0.22 s and 0.27 s on two; float32
        on two: 0.25 s and 0.38 s; best of 6). GPUs run the batch at once.
        """
        def bind(c: Tensor | None, m: Tensor | None) -> DenoiserFn:
            guided = guided_denoiser(self.denoiser, c, m, guidance_scale,
                                     guidance_min_sigma * self.denoiser.formulation.sigma_data)

            def run(x: Tensor, sigma: Tensor) -> Tensor:
                with self._autocast():
                    return guided(x, sigma)

            return run

        if self.device.type != "cpu":
            return bind(cond, mask)
        items = [bind(_item(cond, i), _item(mask, i)) for i in range(len(cond))] if cond is not None else None

        def one_at_a_time(x: Tensor, sigma: Tensor) -> Tensor:
            denoisers = items or [bind(None, None)] * len(x)
            if len(denoisers) != len(x):
                raise ValueError(f"a batch of {len(x)} items for a condition of {len(denoisers)}")
            return torch.cat([denoise(x[i : i + 1], _item(sigma, i)) for i, denoise in enumerate(denoisers)])

        return one_at_a_time

    # ------------------------------------------------------------------ plans
    def generation_plan(self, **overrides: Any) -> GenerationPlan:
        """What `generate` runs: this model's sampler defaults with `overrides` (sampler, steps,
        guidance_scale, sampler_options, num_samples, chunk_frames, overlap_frames)."""
        return generation_plan(self.components.sampler, **overrides)

    def enhancement_plan(self, method: str | None = None, **overrides: Any) -> EnhancementPlan:
        """What `enhance` runs: this model's enhancement defaults with `method` (a registered method
        or preset) and `overrides` (steps, guidance_scale, options, chunk_frames, overlap_frames,
        batch_size)."""
        return enhancement_plan(self.components.enhancement, method, **overrides)

    # ------------------------------------------------------------------ video-to-speech
    @torch.no_grad()
    def generate(self, video: str | Path | MouthVideo | np.ndarray, plan: GenerationPlan | None = None, *,
                 seed: int = 0, show_progress: bool = False, landmarks: str = DEFAULT_BACKEND,
                 landmark_weights: str | Path | None = None, **overrides: Any) -> GenerationOutput:
        """Speech for a silent talking-face video, `plan.num_samples` samples of exactly its duration.

        `plan` (or, without one, `generation_plan(**overrides)`: e.g. steps=4, sampler="heun",
        sampler_options={"eta": 1.0}, num_samples=2) says how; the output carries it."""
        if not self.components.audio_visual:
            raise InputError("this model is an audio-only speech prior (trained without video): it enhances "
                             "speech but cannot generate it from lips; use an audio-visual model")
        plan = plan_or_overrides(plan, overrides, self.generation_plan)
        mouth = self.load_video(video, landmarks, landmark_weights)
        length = mouth.num_frames * SAMPLES_PER_FRAME
        frames = self.transform.num_frames(length)
        notes = []
        if not mouth.face_ok.any():
            notes.append("no frame has a usable face: the output is the audio-only prior's speech")
        chunks = plan_chunks(frames, plan.chunk_frames, plan.overlap_frames)
        cond, mask = self.condition(mouth, chunks[-1][1])  # frames past the video are masked
        start = None
        if plan.sampler.start == "rendition" and mouth.face_ok.any():
            start = self._rendition_start(plan, cond, mask, self.transform.num_samples(chunks[-1][1]), seed)
        elif plan.sampler.start == "rendition":
            notes.append("no lips to render: sampling starts from noise")
        pieces, calls = self._generate_chunks(plan, cond, mask, chunks, seed, show_progress, start)
        spec = self._join(pieces, chunks, frames)
        audio = self.transform.istft(spec, length).cpu().numpy()
        peak = np.abs(audio).max(axis=-1, keepdims=True)
        audio = np.where(peak > 0.99, audio * (0.99 / np.maximum(peak, 1e-9)), audio).astype(np.float32)
        return GenerationOutput(audio=audio, sample_rate=self.sample_rate, network_calls=calls, plan=plan, notes=notes)

    def _rendition_start(self, plan: GenerationPlan, cond: Tensor, mask: Tensor, length: int, seed: int) -> Tensor:
        """(1, 2, F, T) the rendition of the lips' envelope (`avdiff.audio.rendition`) that a
        `start: rendition` run samples from, as the score network sees speech; silent where no
        usable face is."""
        bands = self.lip_encoder.config.envelope_bands
        if not bands:
            raise InputError("this model's lips predict no envelope, so sampling cannot start from a rendition "
                             "of it: use start noise")
        generator = torch.Generator().manual_seed(item_seed(seed, RENDITION_SEED_PART))
        wave = render(cond[0, :bands].float().cpu(), self.transform, plan.sampler.pitch_hz, length, generator,
                      present=mask[0].cpu())
        return self.transform.encode(wave.unsqueeze(0).to(self.device))[..., : cond.shape[-1]]

    def _generate_chunks(self, plan: GenerationPlan, cond: Tensor, mask: Tensor, chunks: list[tuple[int, int]],
                         seed: int, show_progress: bool, initial: Tensor | None = None) -> tuple[list[Tensor], int]:
        """Sample every chunk from noise (or from `initial` (1, 2, F, T) noised to the plan's start
        level), each forced to agree with the previous one on their overlap."""
        num_samples, bins = plan.num_samples, self.transform.num_bins
        pieces: list[Tensor] = []
        calls = 0
        for index, (begin, end) in enumerate(chunks):
            generators = make_generators([item_seed(seed, j, index) for j in range(num_samples)], self.device)
            chunk_cond = cond[..., begin:end].expand(num_samples, -1, -1)
            chunk_mask = mask[..., begin:end].expand(num_samples, -1)
            denoise = self._denoiser_for(chunk_cond, chunk_mask, plan.sampler.guidance_scale,
                                         plan.sampler.guidance_min_sigma)
            if index > 0:
                known_end = chunks[index - 1][1] - begin
                denoise = _keep_known(denoise, pieces[-1][..., begin - chunks[index - 1][0] :], known_end)
            if initial is None:
                out = sample_from_noise(plan.sampler, denoise, self.denoiser.formulation,
                                        (num_samples, 2, bins, end - begin), generators, self.device, show_progress)
            else:
                sigma = plan.sampler.start_sigma * self.denoiser.formulation.sigma_data
                out = sample_from_start(plan.sampler, denoise, self.denoiser.formulation,
                                        initial[..., begin:end].expand(num_samples, -1, -1, -1), sigma, generators,
                                        self.device, show_progress)
            calls += out.network_calls
            pieces.append(out.sample.float())
        return pieces, calls

    def _join(self, pieces: list[Tensor], chunks: list[tuple[int, int]], frames: int, scale: float = 1.0) -> Tensor:
        """Cross-fade chunk spectrograms (B, 2, F, T_c), times `scale`, as linear complex STFTs ->
        (B, F, T); one chunk at a time, so no whole-length copy is made besides the result."""
        linear = (self.transform.decompress(self.transform.to_complex(p * scale if scale != 1.0 else p))
                  for p in pieces)
        return join_chunks(linear, chunks, frames)

    # ------------------------------------------------------------------ enhancement
    @torch.no_grad()
    def enhance(self, noisy: str | Path | np.ndarray, sample_rate: int | None = None,
                video: str | Path | MouthVideo | np.ndarray | None = None, plan: EnhancementPlan | None = None, *,
                seed: int = 0, show_progress: bool = False, landmarks: str = DEFAULT_BACKEND,
                landmark_weights: str | Path | None = None, lip_agreement: bool = LIP_AGREEMENT_BY_DEFAULT,
                **overrides: Any) -> EnhancementOutput:
        """Enhance noisy speech, audio-only (video None) or audio-visual; see the module docstring.

        `plan` (or, without one, `enhancement_plan(**overrides)`: e.g. method="udiffse-paper",
        steps=3, options={"num_samples": 1}) says how; the output carries it. `lip_agreement`: trust
        the lips only where they agree with what is heard (`heard_agreement`; default:
        `avdiff.pipeline.shipped.LIP_AGREEMENT_BY_DEFAULT`, BENCHMARKS.md "Unreliable lips")."""
        plan = plan_or_overrides(plan, overrides, self.enhancement_plan)
        audio = self.noisy_audio(noisy, sample_rate)
        notes = list(audio.notes)
        if audio.is_silent:
            return EnhancementOutput(np.zeros(audio.source_length, np.float32), audio.source_rate, 0, plan, notes)
        peak, waveform = self.normalised_waveform(audio)
        frames = self.transform.num_frames(len(audio.samples))
        if video is not None and not self.components.audio_visual:
            notes.append("the model is an audio-only speech prior: the video is not used")
            video = None
        mouth = None if video is None else self.load_video(video, landmarks, landmark_weights)
        embeddings = None
        if mouth is not None:
            notes += self.check_lengths(mouth, audio)
            if lip_agreement:
                mouth, embeddings = self.heard_agreement(mouth, waveform)
        chunks = plan.chunks(frames)
        y = torch.nn.functional.pad(self.transform.encode(waveform.unsqueeze(0)), (0, chunks[-1][1] - frames))
        spectrogram_scale = (float(power(y).max().clamp_min(1e-20).sqrt())
                             if plan.settings.normalize == "spectrogram_max" else 1.0)
        cond, mask = self.condition(mouth, chunks[-1][1], USABLE_SCORE, embeddings)
        trust = self.lip_trust(mouth, chunks[-1][1])
        if mask is not None and trust is not None:
            mask[..., frames:] = False
            trust = trust * mask
            notes += unreliable_note(mouth)
        y = y / spectrogram_scale  # rebound: the unscaled spectrogram is freed
        pieces, calls, report = self._enhance_chunks(y, (cond, mask, trust), chunks, plan, seed, show_progress)
        del y
        spec = self._join(pieces, chunks, frames, spectrogram_scale)
        del pieces
        enhanced = self.at_source_rate(self.transform.istft(spec, len(audio.samples))[0].cpu().numpy() * peak, audio)
        return EnhancementOutput(enhanced, audio.source_rate, calls, plan, notes, input_report=report)

    def _enhance_chunks(self, y: Tensor, lips: tuple[Tensor | None, ...], chunks: list[tuple[int, int]],
                        plan: EnhancementPlan, seed: int, show_progress: bool) -> tuple[list[Tensor], int, dict]:
        """Posterior sampling of every chunk of y, `plan.batch_size` chunks at a time; `lips`: the
        condition, its mask and the lips' reliability on y's frames (each None without video).
        Returns the chunks, the network calls and the method's report averaged over the chunks."""
        method: PosteriorMethod = plan.build_method()
        compression = Compression(self.transform.config.compression_alpha, self.transform.config.compression_beta)
        pieces: list[Tensor] = []
        reports: dict[str, list[float]] = {}
        calls = 0
        for first in range(0, len(chunks), plan.batch_size):
            group = chunks[first : first + plan.batch_size]
            y_chunks = torch.cat([y[..., s:e] for s, e in group])
            chunk_cond, chunk_mask, chunk_trust = (None if t is None else torch.cat([t[..., s:e] for s, e in group])
                                                   for t in lips)
            generators = make_generators([item_seed(seed, first + i) for i in range(len(group))], self.device)

            def denoiser_for(repeats: int, c: Tensor | None = chunk_cond, m: Tensor | None = chunk_mask) -> DenoiserFn:
                c = None if c is None else c.repeat_interleave(repeats, 0)
                m = None if m is None else m.repeat_interleave(repeats, 0)
                return self._denoiser_for(c, m, plan.guidance_scale)

            evidence = lip_evidence(chunk_cond, chunk_mask, self.lip_encoder.config.envelope_bands, self.transform,
                                    y_chunks.shape[-2], chunk_trust)
            out = method.run(PosteriorProblem(y_chunks, denoiser_for, self.denoiser.formulation, generators,
                                              show_progress, evidence, compression))
            calls += out.network_calls
            pieces.extend(out.sample.float().split(1))
            for name, values in out.report.items():
                reports.setdefault(name, []).extend(values)
        return pieces, calls, {name: round(float(np.mean(values)), 3) for name, values in reports.items()}

def unreliable_note(mouth: MouthVideo) -> list[str]:
    """A note when some frames with a face have lips too unreliable to condition on (masked there)."""
    unreliable = int((mouth.face_ok & (mouth.trust < USABLE_SCORE)).sum())
    if not unreliable:
        return []
    return [f"the lips are unreliable on {unreliable} of {mouth.num_frames} frames (occluded, unlike the rest of "
            "the clip or out of step with the sound): the audio-only prior there"]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """`device`, or cuda where a GPU is available and cpu otherwise; asking for cuda without one is
    an InputError."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device}: no CUDA GPU is available on this machine; use cpu")
    return device


def plan_or_overrides(plan: Any, overrides: dict[str, Any], make_plan: Any) -> Any:
    """`plan` as given, or the plan `make_plan(**overrides)` resolves; both at once is ambiguous."""
    if plan is None:
        return make_plan(**overrides)
    if overrides:
        raise TypeError(f"give a plan or overrides, not both (got a plan and {', '.join(sorted(overrides))})")
    return plan


def _keep_known(denoise: DenoiserFn, known: Tensor, frames: int) -> DenoiserFn:
    """A denoiser whose estimate on the first `frames` frames is the already generated `known`."""
    known = known[..., :frames]

    def run(x: Tensor, sigma: Tensor) -> Tensor:
        out = denoise(x, sigma).clone()
        out[..., :frames] = known
        return out

    return run


def _item(batch: Tensor | None, index: int) -> Tensor | None:
    """Item `index` of a batched tensor, keeping its batch dimension (a 0-d tensor or None as is)."""
    if batch is None or batch.ndim == 0:
        return batch
    return batch[index : index + 1]
