"""Training crops: random 2.04 s windows of audio with the exactly aligned mouth-crop video.

STFT frames are centred with hop 128 at 16 kHz (125 frames/s), 5 per 25 fps video frame.
A crop of `crop_frames` STFT frames starts on a video-frame boundary: STFT frame 5 j0 is
centred on sample 640 j0, where video frame j0 starts. So the audio crop is samples
[640 j0, 640 j0 + (crop_frames - 1) * 128) and the video crop is frames
j0 .. j0 + ceil(crop_frames / 5) - 1, and `upsample_to_stft(..., offset=0)` on the video crop
lines up exactly with the STFT of the audio crop: the fractional 51.2 frames are handled by
taking the 52nd frame, which covers STFT frame 255 only.

Clips shorter than a crop are zero-padded; `frame_mask` (STFT frames inside the clip),
`video_valid` (video frames inside the clip) and `face_ok` (a usable face) say which parts
are real. Randomness comes only from the crop seed that `ShardedEpochSampler` pairs with
each index, so crops are reproducible whatever the number of workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from avdiff.config.schema import DataConfig, SpectrogramConfig
from avdiff.data.manifest import has_video, read_manifest, resolve
from avdiff.data.phone_labels import Phonemes, frame_phones, read_alignments
from avdiff.data.video_jitter import jitter_exposure, jitter_geometry
from avdiff.errors import InputError
from avdiff.timegrid import SAMPLE_RATE, STFT_HOP_LENGTH, VIDEO_FPS

if TYPE_CHECKING:
    from avdiff.data.frontend_cache import FrontendFeatures

MOUTH_MEAN_PIXEL = round(0.421 * 255)  # value of time-masked frames (the normalisation mean)


@dataclass(frozen=True)
class CropGeometry:
    """Sizes of one training crop on the STFT, audio and video time grids."""

    crop_frames: int
    sample_rate: int = SAMPLE_RATE
    hop_length: int = STFT_HOP_LENGTH

    def __post_init__(self) -> None:
        if self.sample_rate % VIDEO_FPS or (self.sample_rate // VIDEO_FPS) % self.hop_length:
            raise ValueError(
                f"hop_length {self.hop_length} at {self.sample_rate} Hz does not divide a {VIDEO_FPS} fps video frame; "
                "exact audio-video alignment needs an integer number of STFT frames per video frame"
            )

    @property
    def samples_per_video_frame(self) -> int:
        return self.sample_rate // VIDEO_FPS

    @property
    def stft_per_video_frame(self) -> int:
        return self.samples_per_video_frame // self.hop_length

    @property
    def audio_samples(self) -> int:
        """Samples whose centred STFT has exactly `crop_frames` frames."""
        return (self.crop_frames - 1) * self.hop_length

    @property
    def video_frames(self) -> int:
        """Video frames covering STFT frames 0 .. crop_frames - 1 of a frame-aligned crop."""
        return (self.crop_frames - 1) // self.stft_per_video_frame + 1

    def max_start(self, num_video_frames: int) -> int:
        """Last start frame j0 whose crop stays inside a clip of `num_video_frames` frames."""
        stft_frames = self.stft_per_video_frame * num_video_frames + 1
        return max(0, (stft_frames - self.crop_frames) // self.stft_per_video_frame)


class AVCropDataset(Dataset):
    """Items of a prepared manifest as aligned (audio, mouth video) crops; see the module docstring.

    Indexed by (index, crop_seed) from `ShardedEpochSampler` (training: random start and
    augmentations) or by a plain index (evaluation: the crop starts at the clip's beginning,
    centre-cropped, no augmentation). With `phone_labels`, each crop also carries the phoneme at
    each of its video frames (`avdiff.data.phone_labels`), read from the corpus's alignments.
    """

    def __init__(
        self,
        manifest_path: str | Path | Sequence[str | Path],
        data: DataConfig,
        spectrogram: SpectrogramConfig,
        train: bool = True,
        phone_labels: bool = False,
    ) -> None:
        paths = [manifest_path] if isinstance(manifest_path, (str, Path)) else list(manifest_path)
        self.manifests = [Path(path) for path in paths]
        self.items: list[dict[str, Any]] = []
        self.item_manifest: list[int] = []  # which manifest each item came from
        for number, path in enumerate(self.manifests):
            items = read_manifest(path)
            if not items:
                raise InputError(f"{path}: the manifest has no items")
            self.items += items
            self.item_manifest += [number] * len(items)
        self.data = data
        self.train = train
        self.sample_rate = spectrogram.sample_rate
        self.geometry = CropGeometry(data.crop_frames, spectrogram.sample_rate, spectrogram.hop_length)
        self._peaks: dict[int, float] = {}  # per-clip audio peak, read once per worker process
        self.alignments: dict[str, Phonemes] | None = None
        self.frontend_features: "FrontendFeatures | None" = None  # set by `use_frontend_features`
        if phone_labels:
            self.alignments = {}
            for path in self.manifests:
                self.alignments.update(read_alignments(path))

    def use_frontend_features(self, features: "FrontendFeatures") -> None:
        """Crops carry the frozen front-end's cached features, (T_v, C) float32, in place of mouth
        pixels from now on (`avdiff.data.frontend_cache`); of the augmentations only the flip applies."""
        self.frontend_features = features

    @property
    def has_video(self) -> bool:
        """Whether any item has mouth crops (else the data trains an audio-only prior)."""
        return any(has_video(item) for item in self.items)

    def sampling_weights(self, manifest_weights: Sequence[float] | None) -> list[float] | None:
        """Per-item probabilities giving each manifest its weight's share of the crops (None: uniform)."""
        if manifest_weights is None:
            return None
        if len(manifest_weights) != len(self.manifests):
            raise InputError(f"{len(manifest_weights)} sampling weights for {len(self.manifests)} training manifests")
        counts = np.bincount(self.item_manifest, minlength=len(self.manifests))
        total = float(sum(manifest_weights))
        return [manifest_weights[m] / total / counts[m] for m in self.item_manifest]

    def item_path(self, index: int, relative: str) -> Path:
        """A path of item `index`'s manifest entry, resolved against its manifest's folder."""
        return resolve(self.manifests[self.item_manifest[index]], relative)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = (key, None) if isinstance(key, int) else key
        item = self.items[index]
        rng = np.random.default_rng(seed) if (self.train and seed is not None) else None
        num_frames = item["num_frames"]
        start = int(rng.integers(0, self.geometry.max_start(num_frames) + 1)) if rng is not None else 0

        audio, audio_valid = self._read_audio(index, start)
        if self.data.normalize == "peak":
            audio *= 1.0 / self._peak(index)
        video, video_valid = self._read_video(index, start, rng) if has_video(item) else self._no_video()
        face_ok = np.zeros(self.geometry.video_frames, dtype=bool)
        flags = np.asarray(item.get("face_ok", [True] * num_frames), dtype=bool)[start : start + self.geometry.video_frames]
        face_ok[: len(flags)] = flags
        stft_valid = min(self.geometry.crop_frames, self.geometry.stft_per_video_frame * (num_frames - start) + 1)
        frame_mask = np.zeros(self.geometry.crop_frames, dtype=bool)
        frame_mask[:stft_valid] = True
        if audio_valid == 0:
            raise InputError(f"{item['id']}: no audio at video frame {start}")
        crop: dict[str, Any] = {
            "id": item["id"],
            "audio": torch.from_numpy(audio),
            "video": torch.from_numpy(video),
            "video_valid": torch.from_numpy(video_valid),
            "face_ok": torch.from_numpy(face_ok & video_valid),
            "frame_mask": torch.from_numpy(frame_mask),
            "start_frame": start,
            "has_video": has_video(item),
        }
        if self.alignments is not None:
            crop["phones"] = torch.from_numpy(frame_phones(self.alignments.get(item["id"]), start,
                                                           self.geometry.video_frames, num_frames))
        return crop

    def _read_audio(self, index: int, start: int) -> tuple[np.ndarray, int]:
        path = self.item_path(index, self.items[index]["audio"])
        offset = start * self.geometry.samples_per_video_frame
        try:
            with sf.SoundFile(str(path)) as handle:
                if handle.samplerate != self.sample_rate or handle.channels != 1:
                    raise InputError(
                        f"{path}: expected {self.sample_rate} Hz mono, got {handle.samplerate} Hz with "
                        f"{handle.channels} channels; re-run avdiff prepare"
                    )
                handle.seek(min(offset, handle.frames))
                samples = handle.read(self.geometry.audio_samples, dtype="float32", always_2d=False)
        except (sf.LibsndfileError, RuntimeError) as error:
            raise InputError(f"{path}: cannot read audio ({error})") from error
        if not np.isfinite(samples).all():
            raise InputError(f"{path}: audio contains NaN or infinite values")
        padded = np.zeros(self.geometry.audio_samples, dtype=np.float32)
        padded[: len(samples)] = samples
        return padded, len(samples)

    def _peak(self, index: int) -> float:
        """The clip's absolute audio peak (1 for a silent clip), cached."""
        if index not in self._peaks:
            path = self.item_path(index, self.items[index]["audio"])
            samples, _ = sf.read(str(path), dtype="float32", always_2d=False)
            peak = float(np.abs(samples).max()) if samples.size else 0.0
            self._peaks[index] = peak if peak > 1e-8 else 1.0
        return self._peaks[index]

    def _no_video(self) -> tuple[np.ndarray, np.ndarray]:
        """An audio-only item's crop: blank frames (zero features), none of them valid (so its condition is null)."""
        if self.frontend_features is not None:
            return (np.zeros((self.geometry.video_frames, self.frontend_features.channels), dtype=np.float32),
                    np.zeros(self.geometry.video_frames, dtype=bool))
        size = self.data.crop_size
        return (np.full((self.geometry.video_frames, size, size), MOUTH_MEAN_PIXEL, dtype=np.uint8),
                np.zeros(self.geometry.video_frames, dtype=bool))

    def mouth_crops(self, index: int) -> np.ndarray:
        """Item `index`'s stored mouth crops, memory-mapped (frames, height, width) uint8, checked to be at
        least `data.crop_size` on a side; an InputError naming the file otherwise."""
        path = self.item_path(index, self.items[index]["video"])
        try:
            frames = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as error:
            raise InputError(f"{path}: cannot read mouth crops ({error})") from error
        if frames.ndim != 3 or frames.dtype != np.uint8:
            raise InputError(f"{path}: expected uint8 (frames, height, width) mouth crops, got {frames.dtype} {frames.shape}")
        height, width = frames.shape[1:]
        if height < self.data.crop_size or width < self.data.crop_size:
            raise InputError(f"{path}: mouth crops are {height}x{width}, smaller than data.crop_size={self.data.crop_size}")
        return frames

    def _read_video(self, index: int, start: int, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
        if self.frontend_features is not None:
            return self._cached_features(index, start, rng)
        frames = self.mouth_crops(index)
        size = self.data.crop_size
        height, width = frames.shape[1:]
        if rng is not None and self.data.random_crop:
            top, left = int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))
        else:
            top, left = (height - size) // 2, (width - size) // 2
        clip = np.asarray(frames[start : start + self.geometry.video_frames, top : top + size, left : left + size])
        video = np.zeros((self.geometry.video_frames, size, size), dtype=np.uint8)
        video[: len(clip)] = clip
        valid = np.zeros(self.geometry.video_frames, dtype=bool)
        valid[: len(clip)] = True
        if rng is not None:
            video = self._augment(video, len(clip), rng)
        return video, valid

    def _cached_features(self, index: int, start: int, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
        """The crop's cached front-end features, mirrored with `data.hflip_prob` in training."""
        mirrored = rng is not None and rng.random() < self.data.hflip_prob
        clip = self.frontend_features.clip(index, mirrored)[start : start + self.geometry.video_frames]
        features = np.zeros((self.geometry.video_frames, clip.shape[-1]), dtype=np.float32)
        features[: len(clip)] = clip
        valid = np.zeros(self.geometry.video_frames, dtype=bool)
        valid[: len(clip)] = True
        return features, valid

    def _augment(self, video: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
        """Left-right flip of the whole clip, its jitter (`avdiff.data.video_jitter`, on the frames
        inside the clip) and one masked span (set to the mean pixel)."""
        if rng.random() < self.data.hflip_prob:
            video = video[:, :, ::-1].copy()
        if length > 0 and (self.data.geometric_jitter > 0 or self.data.exposure_jitter > 0):
            video = video.copy()
            clip = jitter_geometry(video[:length], self.data.geometric_jitter, rng)
            video[:length] = jitter_exposure(clip, self.data.exposure_jitter, rng)
        if length > 0 and self.data.time_mask_max_frames > 0 and rng.random() < self.data.time_mask_prob:
            span = int(rng.integers(1, self.data.time_mask_max_frames + 1))
            first = int(rng.integers(0, max(1, length - span + 1)))
            video[first : first + span] = MOUTH_MEAN_PIXEL
        return video


def collate_crops(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack a list of crops into a batch (ids stay a list)."""
    batch: dict[str, Any] = {"id": [item["id"] for item in items]}
    for key in ("audio", "video", "video_valid", "face_ok", "frame_mask"):
        batch[key] = torch.stack([item[key] for item in items])
    batch["start_frame"] = torch.tensor([item["start_frame"] for item in items])
    batch["has_video"] = torch.tensor([item["has_video"] for item in items])
    if all("phones" in item for item in items):
        batch["phones"] = torch.stack([item["phones"] for item in items])
    return batch
