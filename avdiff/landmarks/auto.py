"""`--landmarks auto`, the default: face-alignment where its weights are at hand, dlib otherwise.

face-alignment (S3FD + 2D-FAN) is the better detector but downloads its weights on first use,
which fails on a machine without internet; dlib's 68-point model comes inside a wheel. `auto`
never downloads: it takes face-alignment when its two weight files are in the folder given with
`--landmark-weights` or in torch hub's cache, dlib when they are not (or when the weights given
are a file, i.e. dlib's model), and says which in one line. Only when neither can run is it an
error, with both reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from avdiff.landmarks.base import LandmarkBackendError
from avdiff.landmarks.hub import default_weights_dir

AUTO = "auto"


@dataclass(frozen=True)
class BackendChoice:
    """The backend to build, the weights to give it, and why it was chosen (for the one line)."""

    name: str
    weights: str | None
    reason: str

    def describe(self) -> str:
        return f"landmarks: {self.name} ({self.reason})"


def face_alignment_missing(weights_dir: Path | None) -> str | None:
    """Why face-alignment cannot run here without downloading, or None if it can."""
    folder = weights_dir or default_weights_dir()
    if not folder.is_dir() or not any(folder.iterdir()):  # said without importing face_alignment (0.5 s) or torch
        return f"its weights are not in {folder} (no files there)"
    from avdiff.landmarks.fa_backend import expected_weight_files

    try:
        files = expected_weight_files()  # imports face_alignment
    except LandmarkBackendError as error:
        return str(error)
    missing = [name for name in files.values() if not (folder / name).is_file()]
    return f"its weights {', '.join(missing)} are not in {folder}" if missing else None


def dlib_missing() -> str | None:
    """Why the dlib backend cannot run here, or None if it can."""
    from avdiff.landmarks.dlib_backend import _import_dlib, default_predictor_path

    try:
        _import_dlib()
        default_predictor_path()
    except LandmarkBackendError as error:
        return str(error)
    return None


def choose_backend(name: str, weights: str | Path | None = None) -> BackendChoice:
    """`name` itself unless it is `auto`; then face-alignment or dlib as the module docstring says."""
    weights_text = str(weights) if weights is not None else None
    if name != AUTO:
        return BackendChoice(name, weights_text, "asked for")
    if weights is not None and Path(weights).is_file():
        return BackendChoice("dlib", weights_text, f"{weights} is a file: dlib's 68-point model")
    if weights is not None:  # a folder: face-alignment's weights, as the user said; its load checks them
        return BackendChoice("face-alignment", weights_text, f"weights from {weights}")
    fa_reason = face_alignment_missing(None)
    if fa_reason is None:
        return BackendChoice("face-alignment", None, f"weights found in {default_weights_dir()}")
    dlib_reason = dlib_missing()
    if dlib_reason is None:
        return BackendChoice("dlib", None, f"face-alignment cannot run offline: {fa_reason}")
    raise LandmarkBackendError(f"--landmarks auto: no landmark backend can run here. face-alignment: {fa_reason}. "
                               f"dlib: {dlib_reason}. Install one (pip install 'avdiff[dlib]' works offline) or "
                               "pass face-alignment's weights folder with --landmark-weights DIR")
