"""Face landmarks behind one small interface, with `face-alignment` and `dlib` backends."""

from __future__ import annotations

from pathlib import Path

from avdiff.errors import InputError
from avdiff.landmarks.auto import AUTO, BackendChoice, choose_backend
from avdiff.landmarks.base import MOUTH, NUM_LANDMARKS, LandmarkBackendError, LandmarkDetector, Landmarks
from avdiff.landmarks.tracking import TrackedLandmarks, fill_gaps, smooth, track

BACKENDS: tuple[str, ...] = ("face-alignment", "dlib")
# What --landmarks takes; `auto` (the default) picks one of BACKENDS (avdiff.landmarks.auto).
BACKEND_CHOICES: tuple[str, ...] = (AUTO, *BACKENDS)
DEFAULT_BACKEND = AUTO


def create_detector(name: str, device: str = "cpu", weights: str | Path | None = None,
                    batch_size: int | None = None) -> LandmarkDetector:
    """A landmark detector by backend name.

    `weights`: for face-alignment, a folder holding its two weight files; for dlib, the
    68-point shape predictor file. Nothing heavy is loaded before the first frames. `auto`
    resolves to one of them first (`choose_backend`).
    """
    if name == AUTO:
        choice = choose_backend(name, weights)
        name, weights = choice.name, choice.weights
    if name == "face-alignment":
        from avdiff.landmarks.fa_backend import FaceAlignmentDetector

        return FaceAlignmentDetector(device=device, weights_dir=weights, batch_size=batch_size or 8)
    if name == "dlib":
        from avdiff.landmarks.dlib_backend import DlibLandmarkDetector

        return DlibLandmarkDetector(predictor_path=weights, batch_size=batch_size or 16)
    raise InputError(f"unknown landmark backend {name!r}; choose one of {', '.join(BACKENDS)}")


def check_backend(name: str, device: str = "cpu", weights: str | Path | None = None) -> None:
    """Build the backend and load its weights now: LandmarkBackendError (naming the package or the
    weights file) if it cannot run, before any item is processed."""
    detector = create_detector(name, device=device, weights=weights)
    load = getattr(detector, "load", None)  # face-alignment loads lazily; dlib in its constructor
    if load is not None:
        load()


__all__ = ["AUTO", "BACKENDS", "BACKEND_CHOICES", "DEFAULT_BACKEND", "BackendChoice", "choose_backend", "check_backend", "MOUTH", "NUM_LANDMARKS", "LandmarkBackendError", "LandmarkDetector", "Landmarks",
           "TrackedLandmarks", "create_detector", "fill_gaps", "smooth", "track"]
