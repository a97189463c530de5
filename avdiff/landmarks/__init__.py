"""Face landmarks behind one small interface, with `face-alignment` and `dlib` backends.

The backends are a registry (`BACKENDS`): a name -> a factory `(device, weights, batch_size) ->
LandmarkDetector`; `--landmarks` takes any registered name or `auto`. A backend of your own is one
`BACKENDS.register(name, factory)` (in a module imported first, or an `avdiff.plugins` entry point).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from avdiff.errors import InputError
from avdiff.landmarks.auto import AUTO, BackendChoice, choose_backend
from avdiff.landmarks.base import MOUTH, NUM_LANDMARKS, LandmarkBackendError, LandmarkDetector, Landmarks
from avdiff.registry import Registry, RegistryError

# (device, weights or None, batch_size or None) -> a detector that loads nothing heavy before its first frames
DetectorFactory = Callable[..., LandmarkDetector]
BACKENDS: Registry[DetectorFactory] = Registry("landmark backend")
DEFAULT_BACKEND = AUTO


@BACKENDS.register("face-alignment")
def _face_alignment(device: str, weights: str | Path | None, batch_size: int | None) -> LandmarkDetector:
    from avdiff.landmarks.fa_backend import FaceAlignmentDetector

    return FaceAlignmentDetector(device=device, weights_dir=weights, batch_size=batch_size or 8)


@BACKENDS.register("dlib")
def _dlib(device: str, weights: str | Path | None, batch_size: int | None) -> LandmarkDetector:
    from avdiff.landmarks.dlib_backend import DlibLandmarkDetector

    return DlibLandmarkDetector(predictor_path=weights, batch_size=batch_size or 16)


_TRACKING = ("TrackedLandmarks", "fill_gaps", "smooth", "track")  # loaded on first use: scipy.ndimage is 0.2 s


def __getattr__(name: str) -> Any:
    """`BACKEND_CHOICES`: what --landmarks takes, `auto` (the default; avdiff.landmarks.auto picks
    one of the built-in backends) and every registered backend, plug-ins' included, as of now; the
    tracking names of `avdiff.landmarks.tracking`, imported when first asked for."""
    if name == "BACKEND_CHOICES":
        return (AUTO, *BACKENDS)
    if name in _TRACKING:
        from avdiff.landmarks import tracking

        return getattr(tracking, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    try:
        factory = BACKENDS.get(name)
    except RegistryError as error:
        raise InputError(str(error)) from None
    return factory(device, weights, batch_size)


_KEPT = threading.local()  # this thread's detectors by (name, device, weights): loaded once per process


def shared_detector(name: str, device: str = "cpu", weights: str | Path | None = None) -> LandmarkDetector:
    """`create_detector`'s detector, kept for this thread and given again for the same arguments:
    the backend check and every item of a batch share one (dlib reads its 100 MB model in 0.9 s).
    Detectors forget the previous video's face at each `detect`, so sharing changes no result."""
    key = (name, device, None if weights is None else str(weights))
    kept = _KEPT.__dict__.setdefault("detectors", {})
    if key not in kept:
        kept[key] = create_detector(name, device=device, weights=weights)
    return kept[key]


def check_backend(name: str, device: str = "cpu", weights: str | Path | None = None) -> None:
    """Build the backend and load its weights now: LandmarkBackendError (naming the package or the
    weights file) if it cannot run, before any item is processed (the detector is kept for them)."""
    detector = shared_detector(name, device=device, weights=weights)
    load = getattr(detector, "load", None)  # face-alignment loads lazily; dlib in its constructor
    if load is not None:
        load()


__all__ = ["AUTO", "BACKENDS", "BACKEND_CHOICES", "DEFAULT_BACKEND", "BackendChoice", "choose_backend", "check_backend", "MOUTH", "NUM_LANDMARKS", "LandmarkBackendError", "LandmarkDetector", "Landmarks",
           "TrackedLandmarks", "create_detector", "fill_gaps", "shared_detector", "smooth", "track"]
