"""face-alignment landmarks: S3FD face detector + 2D-FAN, in batches, on CPU or GPU.

The `face-alignment` package (install with `pip install 'avdiff[video]'`) is the default
backend, as in auto_avsr. Nothing is loaded until the first frames arrive, and `compile=False`
is passed (its torch.compile warm-up is slow and fails on some machines).

Weights. face-alignment 1.5 loads two state dicts, by these file names:
`2DFAN4-11f355bf06.pth.tar` (the FAN) and `s3fd-619a316812.pth` (the detector). They are looked
for in `weights_dir` when one is named (for machines without internet: copy the two files
there), else in the library's usual cache, `$TORCH_HOME/hub/checkpoints/` (by default
`~/.cache/torch/hub/checkpoints/`), where the library downloads them when allowed.

Batching: the detector runs on a whole batch of frames (shrunk to `detect_max_side` pixels);
the FAN then runs on the batch of face crops, one face per frame (the tracked one).
"""

from __future__ import annotations

import contextlib
import pickle
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
import torch.nn.functional as F

from avdiff.landmarks.hub import default_weights_dir
from avdiff.landmarks.base import NUM_LANDMARKS, LandmarkBackendError, LandmarkDetector, Landmarks, pick_face


def _import_face_alignment():
    try:
        import face_alignment
        import face_alignment.api
        import face_alignment.detection.sfd.sfd_detector as sfd
        import face_alignment.utils as fa_utils
    except ImportError as error:
        raise LandmarkBackendError("the face-alignment landmark backend needs the face-alignment package: "
                         "pip install 'avdiff[video]' (or use --landmarks dlib)") from error
    return face_alignment, sfd, fa_utils


def expected_weight_files() -> dict[str, str]:
    """File names face-alignment loads its weights from: {'fan': ..., 's3fd': ...}."""
    face_alignment, sfd, _ = _import_face_alignment()
    fan_url = face_alignment.api.models_urls["2DFAN-4"]
    s3fd_url = sfd.models_urls["s3fd"]
    return {"fan": Path(urlparse(fan_url).path).name, "s3fd": Path(urlparse(s3fd_url).path).name}


@contextlib.contextmanager
def _fan_weights_from(folder: Path):
    """Make face-alignment read its FAN weights from `folder` instead of downloading them."""
    import face_alignment.api as api

    if not hasattr(api, "load_file_from_url"):
        raise LandmarkBackendError("this face-alignment version is not supported (expected >= 1.5); "
                         "pip install 'face-alignment>=1.5,<2'")
    original = api.load_file_from_url
    api.load_file_from_url = lambda url, *args, **kwargs: str(folder / Path(urlparse(url).path).name)
    try:
        yield
    finally:
        api.load_file_from_url = original


class FaceAlignmentDetector(LandmarkDetector):
    """68 landmarks per frame with face-alignment's S3FD + 2D-FAN (see the module docstring)."""

    name = "face-alignment"

    def __init__(self, device: str = "cpu", weights_dir: str | Path | None = None,
                 allow_download: bool = True, detect_max_side: int = 640,
                 detector_threshold: float = 0.5, batch_size: int = 8) -> None:
        super().__init__(batch_size=batch_size)
        self.device = device
        self.weights_dir = Path(weights_dir) if weights_dir is not None else None
        self.allow_download = allow_download
        self.detect_max_side = detect_max_side
        self.detector_threshold = detector_threshold
        self._fa = None

    def _missing(self, folder: Path) -> list[str]:
        return [name for name in expected_weight_files().values() if not (folder / name).is_file()]

    def load(self):
        """Construct face-alignment now (done on first use); returns the FaceAlignment object."""
        if self._fa is not None:
            return self._fa
        face_alignment, _, _ = _import_face_alignment()
        files = expected_weight_files()
        kwargs = dict(device=self.device, flip_input=False, face_detector="sfd", compile=False,
                      max_batch_size=self.batch_size,
                      face_detector_kwargs={"filter_threshold": self.detector_threshold})
        try:
            if self.weights_dir is not None:
                missing = self._missing(self.weights_dir)
                if missing:
                    raise LandmarkBackendError(f"{self.weights_dir}: face-alignment weights missing: "
                                     f"{', '.join(missing)} (copy them from a machine with internet)")
                kwargs["face_detector_kwargs"]["path_to_detector"] = str(self.weights_dir / files["s3fd"])
                with _fan_weights_from(self.weights_dir):
                    self._fa = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, **kwargs)
            else:
                missing = self._missing(default_weights_dir())
                if missing and not self.allow_download:
                    raise LandmarkBackendError(f"face-alignment weights not in {default_weights_dir()}: "
                                     f"{', '.join(missing)}; copy them there or name a folder "
                                     "holding them (--landmark-weights DIR)")
                self._fa = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, **kwargs)
        except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
            # a failed download, or an unreadable, truncated or mismatched file
            where = f"{self.weights_dir}: " if self.weights_dir is not None else ""
            detail = ("not PyTorch weights (random bytes or another format)" if isinstance(error, pickle.UnpicklingError)
                      else str(error).splitlines()[0][:200])
            raise LandmarkBackendError(f"{where}cannot load the face-alignment weights ({type(error).__name__}: "
                                       f"{detail}); put {files['fan']} and {files['s3fd']} in a folder and "
                                       "pass it as --landmark-weights") from error
        return self._fa

    @torch.no_grad()
    def _detect_boxes(self, frames: np.ndarray) -> list[list[np.ndarray]]:
        """Per frame, the S3FD face boxes (x0, y0, x1, y1) in full-resolution pixels."""
        fa = self.load()
        batch = torch.from_numpy(frames).to(self.device).permute(0, 3, 1, 2).float()
        h, w = batch.shape[-2:]
        scale = min(1.0, self.detect_max_side / max(h, w))
        if scale < 1.0:
            size = (max(16, int(round(h * scale))), max(16, int(round(w * scale))))
            batch = F.interpolate(batch, size=size, mode="bilinear", antialias=True, align_corners=False)
        found = fa.face_detector.detect_from_batch(batch)
        return [[np.asarray(b[:4], dtype=np.float64) / scale for b in boxes] for boxes in found]

    @torch.no_grad()
    def _detect_batch(self, frames: np.ndarray) -> Landmarks:
        _, _, fa_utils = _import_face_alignment()
        fa = self.load()
        points = np.full((frames.shape[0], NUM_LANDMARKS, 2), np.nan, np.float32)
        found = np.zeros(frames.shape[0], bool)
        crops, placed = [], []
        for i, boxes in enumerate(self._detect_boxes(frames)):
            if not boxes:
                continue
            d = boxes[pick_face(boxes, self._previous_box)]
            self._previous_box = d
            center = np.array([(d[0] + d[2]) / 2.0, (d[1] + d[3]) / 2.0])
            center[1] -= (d[3] - d[1]) * fa_utils.CENTER_Y_OFFSET
            scale = (d[2] - d[0] + d[3] - d[1]) / fa.face_detector.reference_scale
            crops.append(fa_utils.crop(frames[i], center, scale).transpose(2, 0, 1))
            placed.append((i, center, scale))
        if not crops:
            return Landmarks(points=points, found=found)
        inputs = torch.from_numpy(np.stack(crops).astype(np.float32) / 255.0).to(self.device)
        heatmaps = fa.face_alignment_net(inputs)
        if isinstance(heatmaps, (list, tuple)):
            heatmaps = heatmaps[-1]
        heatmaps = heatmaps.float().cpu().numpy()
        for k, (i, center, scale) in enumerate(placed):
            _, pts_img, _ = fa_utils.get_preds_fromhm(heatmaps[k:k + 1], center, scale)
            points[i] = np.asarray(pts_img, dtype=np.float32).reshape(NUM_LANDMARKS, 2)
            found[i] = True
        return Landmarks(points=points, found=found)
