"""`VAEPipeline`: enhancement with a speech VAE (the VAE family's methods), the way
`AVDiffusionPipeline.enhance` enhances with a score network.

    pipe = load_pipeline("models/av-vae")                      # avdiff.pipeline.loading
    clean = pipe.enhance("noisy.wav", video="face.mp4")        # the folder's method (vae-mcem)
    clean = pipe.enhance("noisy.wav", video="face.mp4", method="switching-vae")
    clean.switch                                               # P(audio-visual) per STFT frame

The VAE is frame-wise, so the whole input is one problem (no chunks). Frames whose lips score
below `USABLE_SCORE` read the null embedding (the audio-only branch), as in the diffusion path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from avdiff.audio.spectrogram import SpectrogramTransform
from avdiff.errors import InputError
from avdiff.landmarks import DEFAULT_BACKEND
from avdiff.mouth.reliability import USABLE_SCORE
from avdiff.pipeline.inputs import MouthVideo
from avdiff.pipeline.lip_front import LipFrontEnd
from avdiff.pipeline.pipeline import (
    EnhancementOutput,
    default_dtype,
    item_seed,
    plan_or_overrides,
    resolve_device,
    unreliable_note,
)
from avdiff.pipeline.plans import EnhancementPlan, enhancement_plan
from avdiff.pipeline.shipped import LIP_AGREEMENT_BY_DEFAULT, resolve_model
from avdiff.pipeline.vae_folder import VAEComponents, load_vae_folder, save_vae_folder
from avdiff.posterior.vae_base import VAEProblem


class VAEPipeline(LipFrontEnd):
    """A trained speech VAE (audio-only or audio-visual), ready to enhance."""

    def __init__(self, components: VAEComponents, device: str | torch.device = "cpu",
                 dtype: torch.dtype | None = None) -> None:
        self.components = components
        self.device = torch.device(device)
        self.dtype = dtype or default_dtype(self.device)  # the lip encoder's; the VAE runs in float32
        self.transform = SpectrogramTransform(components.spectrogram)
        self.lip_encoder = components.lip_encoder.to(self.device).eval()
        self.vae = components.vae.to(self.device).eval()

    @classmethod
    def from_pretrained(cls, model: str | Path, device: str | torch.device | None = "cpu",
                        dtype: torch.dtype | str | None = None) -> "VAEPipeline":
        """Load a VAE model folder (`avdiff.pipeline.vae_folder`) or a shipped one by name."""
        dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        return cls(load_vae_folder(resolve_model(model)), device=resolve_device(device), dtype=dtype)

    def save_pretrained(self, path: str | Path) -> Path:
        return save_vae_folder(self.components, path)

    def compile(self, mode: str | None = None) -> None:
        """Nothing to compile: the VAE's calls are a few small matrix products."""

    def enhancement_plan(self, method: str | None = None, **overrides: Any) -> EnhancementPlan:
        """What `enhance` runs: the folder's method (or `method`, of the VAE family) with `overrides`
        (options; chunking and guidance are recorded but unused: the VAE sees the whole input)."""
        return enhancement_plan(self.components.enhancement, method, family="vae", **overrides)

    def generate(self, *_: Any, **__: Any) -> Any:
        raise InputError("this is a speech VAE: it enhances noisy speech (avdiff enhance) but does not generate "
                         "speech from lips; use a diffusion video-to-speech model (v2s)")

    @torch.no_grad()
    def enhance(self, noisy: str | Path | np.ndarray, sample_rate: int | None = None,
                video: str | Path | MouthVideo | np.ndarray | None = None, plan: EnhancementPlan | None = None, *,
                seed: int = 0, show_progress: bool = False, landmarks: str = DEFAULT_BACKEND,
                landmark_weights: str | Path | None = None, lip_agreement: bool = LIP_AGREEMENT_BY_DEFAULT,
                **overrides: Any) -> EnhancementOutput:
        """Enhance noisy speech, audio-only (video None) or with the lips; arguments as
        `AVDiffusionPipeline.enhance`'s."""
        plan = plan_or_overrides(plan, overrides, self.enhancement_plan)
        audio = self.noisy_audio(noisy, sample_rate)
        notes = list(audio.notes)
        if audio.is_silent:
            return EnhancementOutput(np.zeros(audio.source_length, np.float32), audio.source_rate, 0, plan, notes)
        peak, waveform = self.normalised_waveform(audio)
        spec = self.transform.stft(waveform)  # (F, T) complex
        if video is not None and not self.components.audio_visual:
            notes.append("the model is an audio-only VAE: the video is not used")
            video = None
        lips, mask = None, None
        if video is not None:
            mouth = self.load_video(video, landmarks, landmark_weights)
            notes += self.check_lengths(mouth, audio)
            embeddings = None
            if lip_agreement:
                mouth, embeddings = self.heard_agreement(mouth, waveform)
            cond, cond_mask = self.condition(mouth, spec.shape[-1], USABLE_SCORE, embeddings)
            notes += unreliable_note(mouth)
            lips, mask = cond[0].T.float(), cond_mask[0]
        generator = torch.Generator().manual_seed(item_seed(seed, 0))
        problem = VAEProblem(spec.abs().square().float(), self.vae, generator, lips, mask, show_progress)
        out = plan.build_method().run(problem)
        enhanced = self.transform.istft(spec * out.wiener_gain.to(self.device), len(audio.samples)).cpu().numpy()
        enhanced = self.at_source_rate(enhanced * peak, audio)
        switch = None if out.switch is None else out.switch.cpu().numpy()
        return EnhancementOutput(enhanced, audio.source_rate, out.network_calls, plan, notes, switch)
