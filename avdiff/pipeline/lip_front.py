"""What every pipeline does with its inputs before its own model runs: the lips (mouth video ->
lip embeddings -> condition on the STFT grid, reliability, agreement with the sound) and the
noisy audio (decoded, resampled, checked against the video's length).

`AVDiffusionPipeline` and `VAEPipeline` inherit it; a subclass sets `components` (with
`spectrogram` and `crop_size`), `device`, `dtype`, `lip_encoder` and `transform`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from avdiff.errors import InputError
from avdiff.landmarks import DEFAULT_BACKEND
from avdiff.media.audio import resample
from avdiff.mouth.mouth_model import MouthModel
from avdiff.mouth.reliability import USABLE_SCORE
from avdiff.models.lip_encoder import lips_to_condition, upsample_mask, upsample_to_stft
from avdiff.pipeline.av_agreement import DEFAULT_AGREEMENT, AgreementSettings, lips_agreement, mixture_envelope
from avdiff.pipeline.inputs import (
    AudioInput,
    MouthVideo,
    audio_from_array,
    load_audio_input,
    load_mouth_video,
    mouth_video_from_array,
)
from avdiff.timegrid import VIDEO_FPS

MAX_VIDEO_AUDIO_MISMATCH_S = 1.0


def fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    """`samples` cut or zero-padded to `length`."""
    if len(samples) >= length:
        return samples[:length]
    return np.pad(samples, (0, length - len(samples)))


class LipFrontEnd:
    """Mouth videos, lip conditions and noisy audio, for a pipeline with a lip encoder."""

    components: Any
    device: torch.device
    dtype: torch.dtype
    lip_encoder: Any
    transform: Any
    # how `heard_agreement` scores the lips against the sound (set on an instance to try others)
    agreement: AgreementSettings = DEFAULT_AGREEMENT

    @property
    def sample_rate(self) -> int:
        return self.components.spectrogram.sample_rate

    @property
    def crop_size(self) -> int:
        return self.components.crop_size

    @property
    def mouth_model(self) -> MouthModel | None:
        """The Gaussian of the lip encoder's training crops, when the model folder has one."""
        return getattr(self.components, "mouth_model", None)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def load_video(self, video: str | Path | MouthVideo | np.ndarray, landmarks: str = DEFAULT_BACKEND,
                   landmark_weights: str | Path | None = None) -> MouthVideo:
        """A MouthVideo from a video file, a mouth-crop .npy, an array or a MouthVideo."""
        if isinstance(video, MouthVideo):  # checked; a reliability given with it is kept
            checked = mouth_video_from_array(video.rois, self.crop_size, video.face_ok, mouth_model=self.mouth_model)
            return checked if video.reliability is None else dataclasses.replace(checked, reliability=video.reliability)
        if isinstance(video, np.ndarray):
            return mouth_video_from_array(video, self.crop_size, mouth_model=self.mouth_model)
        device = "cuda" if self.device.type == "cuda" else "cpu"
        return load_mouth_video(video, self.crop_size, landmarks, landmark_weights, device, self.mouth_model)

    @torch.no_grad()
    def encode_lips(self, video: MouthVideo, window: int = 250, context: int = 25) -> Tensor:
        """Lip embeddings (T_v, D) for the whole clip, once, in overlapping windows of frames.

        Frames whose lips score below `USABLE_SCORE` (no face, a covered mouth) are left out of the
        encoder (its frame mask): through the encoder's temporal context a hand over the mouth
        would otherwise reach the neighbouring frames' embeddings (they come out as zeros; the
        condition masks them)."""
        rois = torch.from_numpy(video.rois).to(self.device)
        keep = torch.from_numpy(video.trust >= USABLE_SCORE).to(self.device)
        keep = None if bool(keep.all()) or not bool(keep.any()) else keep
        frames = len(rois)
        pieces = []
        for start in range(0, frames, window):
            lo, hi = max(0, start - context), min(frames, start + window + context)
            mask = None if keep is None else keep[lo:hi].unsqueeze(0)
            with self._autocast():
                out = self.lip_encoder(rois[lo:hi].unsqueeze(0), frame_mask=mask)[0].float()
            pieces.append(out[start - lo : start - lo + min(window, frames - start)])
        return torch.cat(pieces)

    def condition(self, video: MouthVideo | None, num_frames: int, min_trust: float | None = None,
                  embeddings: Tensor | None = None) -> tuple[Tensor | None, Tensor | None]:
        """(1, D, T) lip condition and (1, T) mask for T STFT frames; frames without a face are masked,
        and with `min_trust` also those whose lips' reliability (`MouthVideo.trust`) is below it
        (`embeddings`: the video's lip embeddings when already computed)."""
        if video is None:
            return None, None
        usable = video.face_ok if min_trust is None else video.trust >= min_trust
        face_ok = torch.from_numpy(usable).to(self.device).unsqueeze(0)
        embeddings = self.encode_lips(video) if embeddings is None else embeddings
        return lips_to_condition(embeddings.unsqueeze(0), face_ok, num_frames)

    def heard_agreement(self, video: MouthVideo, waveform: Tensor) -> tuple[MouthVideo, Tensor]:
        """`video` with its reliability times the lips' agreement with the (N,) peak-normalised audio
        (`avdiff.pipeline.av_agreement`; unchanged for an encoder without an envelope), and its lip
        embeddings (T_v, D), computed once for both."""
        embeddings = self.encode_lips(video)
        bands = self.lip_encoder.config.envelope_bands
        if bands == 0:
            return video, embeddings
        heard = mixture_envelope(self.transform, waveform.unsqueeze(0), bands, video.num_frames)
        score = lips_agreement(embeddings[:, :bands].float().cpu().numpy(), heard, self.agreement)
        return dataclasses.replace(video, reliability=video.trust * score), embeddings

    def lip_trust(self, video: MouthVideo | None, num_frames: int) -> Tensor | None:
        """(1, T) the lips' reliability on T STFT frames (0 past the video), for methods that weigh
        the lips frame by frame."""
        if video is None:
            return None
        trust = torch.from_numpy(video.trust).to(self.device)[None, :, None]
        covered = upsample_mask(torch.ones_like(trust[..., 0], dtype=torch.bool), num_frames)
        return upsample_to_stft(trust, num_frames)[:, 0] * covered

    def noisy_audio(self, noisy: str | Path | np.ndarray, sample_rate: int | None) -> AudioInput:
        if isinstance(noisy, np.ndarray):
            if sample_rate is None:
                raise InputError("enhance: give sample_rate with an array input")
            return audio_from_array(noisy, sample_rate, self.sample_rate)
        return load_audio_input(noisy, self.sample_rate)

    def normalised_waveform(self, audio: AudioInput) -> tuple[float, Tensor]:
        """(peak, the audio divided by it on the device): models see peak-normalised speech, as in training."""
        peak = float(np.abs(audio.samples).max())
        return peak, torch.from_numpy(audio.samples / peak).to(self.device)

    def at_source_rate(self, enhanced: np.ndarray, audio: AudioInput) -> np.ndarray:
        """An output at the model's rate back to the input's rate and exact length, float32, finite."""
        enhanced = resample(enhanced, self.sample_rate, audio.source_rate)
        return np.nan_to_num(fit_length(enhanced, audio.source_length)).astype(np.float32)

    @staticmethod
    def check_lengths(mouth: MouthVideo, audio: AudioInput) -> list[str]:
        video_s = mouth.num_frames / VIDEO_FPS
        audio_s = len(audio.samples) / audio.sample_rate
        if abs(video_s - audio_s) > MAX_VIDEO_AUDIO_MISMATCH_S:
            raise InputError(f"the video lasts {video_s:.2f} s but the audio {audio_s:.2f} s; "
                             "give the video of this recording")
        if abs(video_s - audio_s) > 0.04:
            return [f"video {video_s:.2f} s vs audio {audio_s:.2f} s: frames without video use the audio-only prior"]
        return []
