"""A Gaussian model of the mouth crops a lip encoder was trained on: which frames of a clip show
a mouth like those, whatever most of the clip shows.

The clip-relative test of `avdiff.mouth.reliability` compares each crop with the clip's median
crop, so it fails once half the frames or more are covered: a hand over the mouth for three
quarters of a clip becomes the clip's typical crop, and the talker's own mouth the outlier
(measured on held-out clips: spans of a dark patch at 50-75 % of the frames scored 0.75-0.89
usable, BENCHMARKS.md "Occluded lips"). This model knows what a mouth looks like from the
training crops themselves: each crop's 16 x 16 thumbnail, brightness and contrast taken out,
is scored by its Mahalanobis distance under a Gaussian fitted to the training thumbnails (small
eigenvalues floored, the classic "distance from face space" of eigenfaces made a density), as a
robust z-score against the training crops' own distances.

It only speaks for crops from the domain it was fitted on: a clip whose most mouth-like frames
are far from the training crops (real video before a model trained on synthetic mouths) is out
of its domain, and then the clip-relative test alone decides (`typical_frames` returns None).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avdiff.errors import InputError
from avdiff.mouth.reliability import THUMBNAIL, thumbnails
FILE_NAME = "mouth_model.safetensors"  # in a model folder's lip_encoder/
EIGENVALUE_FLOOR = 1e-3  # eigenvalues below this share of the largest are raised to it
# z-scores of the training crops' own distances: 99.9 % below 7 on the shipped corpora
TYPICAL_Z = 10.0  # a crop at or below this is a mouth (score 1) ...
ATYPICAL_Z = 14.0  # ... falling to 0 here (covered by a dark patch: 13.7 and above)
IN_DOMAIN_Z = 6.0  # the clip's 10th percentile must be below this (synthetic clips: at most 4; real GRID: 8-9)
IN_DOMAIN_PERCENTILE = 10
MIN_FIT_FRAMES = 1024
MAX_FIT_CLIPS = 2000  # spread evenly over the manifests: about 140 000 frames, a few seconds to fit


def normalised_thumbnails(rois: np.ndarray) -> np.ndarray:
    """(T, 256) float64 16 x 16 block means of crops (T, H, W), each with its mean taken out and
    scaled to unit standard deviation (lighting and contrast do not count)."""
    thumbs = thumbnails(rois).reshape(len(rois), -1).astype(np.float64)
    thumbs -= thumbs.mean(axis=1, keepdims=True)
    return thumbs / (thumbs.std(axis=1, keepdims=True) + 1e-3)


@dataclass(frozen=True)
class MouthModel:
    """The Gaussian of normalised training thumbnails: its mean, a whitening matrix, and the
    median and median absolute deviation of the training crops' own distances."""

    mean: np.ndarray  # (256,)
    whitening: np.ndarray  # (256, 256): distances are |(t - mean) @ whitening|
    median: float
    spread: float

    def distances(self, rois: np.ndarray) -> np.ndarray:
        """(T,) Mahalanobis distance of each crop's normalised thumbnail."""
        return np.linalg.norm((normalised_thumbnails(rois) - self.mean) @ self.whitening, axis=1)

    def z_scores(self, rois: np.ndarray) -> np.ndarray:
        """(T,) each crop's distance as a robust z-score against the training crops'."""
        return (self.distances(rois) - self.median) / self.spread

    def typical_frames(self, rois: np.ndarray, face_ok: np.ndarray) -> np.ndarray | None:
        """(T,) float32 in [0, 1]: 1 for a mouth like the training crops, 0 for none (see the
        constants); None when the clip is out of the model's domain (or has under 3 faces)."""
        face_ok = np.asarray(face_ok, dtype=bool)
        if face_ok.sum() < 3:
            return None
        z = self.z_scores(rois)
        if np.percentile(z[face_ok], IN_DOMAIN_PERCENTILE) > IN_DOMAIN_Z:
            return None
        return np.clip((ATYPICAL_Z - z) / (ATYPICAL_Z - TYPICAL_Z), 0.0, 1.0).astype(np.float32)

    def save(self, path: str | Path) -> Path:
        from safetensors.numpy import save_file

        tensors = {"mean": self.mean, "whitening": self.whitening,
                   "median_spread": np.array([self.median, self.spread])}
        save_file({name: np.ascontiguousarray(value, dtype=np.float32) for name, value in tensors.items()}, str(path))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> MouthModel:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            tensors = load_file(str(path))
            median, spread = (float(value) for value in tensors["median_spread"])
            model = cls(tensors["mean"].astype(np.float64), tensors["whitening"].astype(np.float64), median, spread)
        except (OSError, KeyError, ValueError, SafetensorError) as error:
            raise InputError(f"{path}: not a mouth model ({error})") from error
        finite = all(np.isfinite(value).all() for value in (model.mean, model.whitening, median, spread))
        if model.mean.shape != (THUMBNAIL**2,) or model.whitening.shape != (THUMBNAIL**2, THUMBNAIL**2) or not (
                finite and spread > 0):
            raise InputError(f"{path}: not a mouth model (shapes {model.mean.shape}, {model.whitening.shape})")
        return model


def fit_mouth_model(clips: Iterable[np.ndarray]) -> MouthModel:
    """The model of the crops (T, H, W) of `clips` (the lip encoder's training crops, at its crop size)."""
    thumbs = [normalised_thumbnails(np.asarray(rois)) for rois in clips]
    frames = np.concatenate(thumbs) if thumbs else np.zeros((0, THUMBNAIL**2))
    if len(frames) < MIN_FIT_FRAMES:
        raise InputError(f"a mouth model needs at least {MIN_FIT_FRAMES} frames of mouth crops, got {len(frames)}")
    mean = frames.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov((frames - mean).T))
    if not eigenvalues.max() > 1e-6:  # flat or identical crops (a test corpus of uniform frames): no mouths to model
        raise InputError(f"the {len(frames)} training crops do not vary: no mouth model can be fitted to them")
    eigenvalues = np.maximum(eigenvalues, EIGENVALUE_FLOOR * eigenvalues.max())
    whitening = eigenvectors / np.sqrt(eigenvalues)
    distances = np.linalg.norm((frames - mean) @ whitening, axis=1)
    median = float(np.median(distances))
    spread = float(np.median(np.abs(distances - median))) + 1e-6
    return MouthModel(mean, whitening, median, spread)


def load_beside(lip_encoder_folder: str | Path) -> MouthModel | None:
    """The mouth model saved in a model folder's lip_encoder/ (None for folders without one)."""
    path = Path(lip_encoder_folder) / FILE_NAME
    return MouthModel.load(path) if path.is_file() else None


def fit_from_manifests(manifests: Iterable[str | Path], crop_size: int, max_clips: int = MAX_FIT_CLIPS) -> MouthModel:
    """The model of the mouth crops (centre `crop_size`, frames with a face) of up to `max_clips`
    clips spread evenly over the training manifests' items with video."""
    from avdiff.data.manifest import read_manifest, resolve
    from avdiff.mouth.center import center_crop

    items = [(manifest, item) for manifest in manifests for item in read_manifest(manifest) if item.get("video")]
    chosen = [items[i] for i in np.unique(np.linspace(0, len(items) - 1, min(max_clips, len(items))).astype(int))] if items else []

    def crops(manifest: str | Path, item: dict) -> np.ndarray:
        rois = center_crop(np.load(resolve(manifest, item["video"]), allow_pickle=False), crop_size)
        face_ok = np.ones(len(rois), dtype=bool)
        if item.get("face_ok") is not None:
            given = np.asarray(item["face_ok"], dtype=bool)[: len(rois)]
            face_ok[: len(given)] = given
        return rois[face_ok]

    return fit_mouth_model(crops(manifest, item) for manifest, item in chosen)


def write_beside(model: MouthModel, lip_encoder_folder: str | Path) -> Path:
    """Save `model` into a model folder's lip_encoder/ (written to a temporary name, then renamed)."""
    path = Path(lip_encoder_folder) / FILE_NAME
    partial = model.save(path.with_name(f".{FILE_NAME}.partial"))
    partial.replace(path)
    return path
