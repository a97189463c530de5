"""The frozen visual front-end's features of every clip, computed once and memory-mapped.

With a frozen front-end (`lip_encoder.freeze_frontend`), each training step recomputes the same
3D-conv and ResNet features of the same frames; on a CPU that is most of a lip encoder's step.
`training.cache_frontend_features` computes them once per clip (whole clip, centre-cropped to
`data.crop_size`, as seen and mirrored left-right) and the crops then carry features (T_v, C) in
place of pixels: the temporal part trains on them several times faster (BENCHMARKS.md, "The
lips' temporal part on cached features"). Pixel augmentations other than the flip cannot apply to
stored features, so the config refuses them beside the cache.

The cache is a folder named by a digest of the front-end's weights, the pixel normalisation, the
crop size and the items: a resumed run (or another run on the same front-end) reads it back, a
changed front-end or manifest makes a new one. It is written under a temporary name and renamed
when complete, so a killed run never reads half a cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from avdiff.data.manifest import has_video

if TYPE_CHECKING:
    from avdiff.data.crops import AVCropDataset
    from avdiff.models.lip_encoder import LipEncoder

logger = logging.getLogger(__name__)

FEATURES_NAME, OFFSETS_NAME, INFO_NAME = "features.npy", "offsets.npy", "cache.json"
CLIPS_PER_PASS = 4  # clips (each also mirrored) per front-end pass while building


class FrontendFeatures:
    """Per-clip front-end features as seen (orientation 0) and mirrored (1): `clip(index, mirrored)`
    -> (T_v, C) float32. The arrays are opened lazily in each process (data-loader workers get the
    folder, not a copy of the features)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None

    def _open(self) -> tuple[np.ndarray, np.ndarray]:
        if self._arrays is None:
            self._arrays = (np.load(self.folder / FEATURES_NAME, mmap_mode="r"), np.load(self.folder / OFFSETS_NAME))
        return self._arrays

    def __getstate__(self) -> dict[str, Any]:
        return {"folder": self.folder, "_arrays": None}

    @property
    def channels(self) -> int:
        return int(self._open()[0].shape[-1])

    def clip(self, index: int, mirrored: bool) -> np.ndarray:
        """Item `index`'s features, (T_v, C), one per stored frame of its mouth crops (none without video)."""
        features, offsets = self._open()
        return np.asarray(features[offsets[index] : offsets[index + 1], int(mirrored)])


def cache_digest(encoder: "LipEncoder", dataset: "AVCropDataset") -> str:
    """What the cached features depend on: the front-end's weights and buffers, the pixel
    normalisation, the crop size, and each item's manifest, id and mouth-crop file (its size and
    modification time: a re-prepared corpus makes a new cache)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(encoder.frontend.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    described: list[Any] = [encoder.config.pixel_mean, encoder.config.pixel_std, dataset.data.crop_size]
    for index, item in enumerate(dataset.items):
        stored = dataset.item_path(index, item["video"]).stat() if has_video(item) else None
        described.append([str(dataset.manifests[dataset.item_manifest[index]]), item["id"], item.get("video"),
                          stored.st_size if stored else 0, stored.st_mtime_ns if stored else 0])
    digest.update(json.dumps(described).encode())
    return digest.hexdigest()[:16]


def whole_clip(dataset: "AVCropDataset", index: int) -> np.ndarray:
    """Item `index`'s mouth crops, whole and centre-cropped to `data.crop_size`: (T_v, S, S) uint8."""
    frames, size = dataset.mouth_crops(index), dataset.data.crop_size
    top, left = (frames.shape[1] - size) // 2, (frames.shape[2] - size) // 2
    return np.ascontiguousarray(frames[:, top : top + size, left : left + size])


@torch.no_grad()
def encode_clips(encoder: "LipEncoder", clips: list[np.ndarray], device: torch.device) -> list[np.ndarray]:
    """Front-end features of each clip as seen and mirrored: (T_v, 2, C) each, one padded pass."""
    longest = max(len(clip) for clip in clips)
    size = clips[0].shape[-1]
    video = np.zeros((2 * len(clips), longest, size, size), dtype=np.uint8)
    mask = torch.zeros(2 * len(clips), longest, dtype=torch.bool)
    for number, clip in enumerate(clips):
        video[2 * number, : len(clip)] = clip
        video[2 * number + 1, : len(clip)] = clip[:, :, ::-1]
        mask[2 * number : 2 * number + 2, : len(clip)] = True
    features = encoder.frontend_features(torch.from_numpy(video).to(device), mask.to(device)).float().cpu().numpy()
    return [np.stack([features[2 * n, : len(clip)], features[2 * n + 1, : len(clip)]], axis=1)
            for n, clip in enumerate(clips)]


def write_cache(encoder: "LipEncoder", dataset: "AVCropDataset", folder: Path, device: torch.device) -> None:
    """Compute every item's features into `folder` (a temporary name first, renamed when complete)."""
    lengths = [len(dataset.mouth_crops(index)) if has_video(item) else 0 for index, item in enumerate(dataset.items)]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    channels = encoder.frontend.out_channels
    features = np.lib.format.open_memmap(partial / FEATURES_NAME, mode="w+", dtype=np.float32,
                                         shape=(int(offsets[-1]), 2, channels))
    with_video = [index for index, length in enumerate(lengths) if length]
    was_training = encoder.training
    encoder.eval()
    for first in range(0, len(with_video), CLIPS_PER_PASS):
        chosen = with_video[first : first + CLIPS_PER_PASS]
        clips = [whole_clip(dataset, index) for index in chosen]
        for index, encoded in zip(chosen, encode_clips(encoder, clips, device)):
            features[offsets[index] : offsets[index + 1]] = encoded
    encoder.train(was_training)
    features.flush()
    del features
    np.save(partial / OFFSETS_NAME, offsets)
    (partial / INFO_NAME).write_text(json.dumps({"items": len(lengths), "frames": int(offsets[-1]),
                                                 "channels": channels}) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


def frontend_cache(encoder: "LipEncoder", dataset: "AVCropDataset", root: Path, device: torch.device,
                   build: bool = True) -> FrontendFeatures:
    """The cache of `dataset`'s features under `root` for `encoder`'s front-end: read back if one
    exists for the same digest, else written (only with `build`: a distributed run's first
    process writes, the others wait and read)."""
    folder = Path(root) / cache_digest(encoder, dataset)
    if not (folder / INFO_NAME).is_file():
        if not build:
            raise FileNotFoundError(f"{folder}: no front-end feature cache (the first process writes it)")
        logger.info("caching the front-end's features of %d clips in %s", len(dataset), folder)
        write_cache(encoder, dataset, folder, device)
    else:
        logger.info("reading the front-end's features of %d clips from %s", len(dataset), folder)
    return FrontendFeatures(folder)
