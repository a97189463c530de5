"""The mouth crops of a talking-face video file, made by exactly `avdiff prepare`'s steps (decode at
25 fps, landmarks, alignment, crops at its size). Imports without torch: the front-end of a one-video
job runs in a process of its own while the job starts (`avdiff.pipeline.mouth_prefetch`)."""

from __future__ import annotations

from pathlib import Path

from avdiff.mouth.extract import MouthROIs


def mouth_rois_from_file(path: str | Path, landmarks: str, landmark_weights: str | Path | None = None,
                         device: str = "cpu") -> MouthROIs:
    """Decode `path` and crop the mouth of every frame with the `landmarks` backend (InputError when
    the file cannot be read or shows no face)."""
    from avdiff.landmarks import shared_detector
    from avdiff.media.video import read_video
    from avdiff.mouth.extract import extract_mouth_rois
    from avdiff.prepare.settings import PrepareSettings

    settings = PrepareSettings(landmarks=landmarks, landmark_weights=str(landmark_weights) if landmark_weights else None,
                               device=device)
    video = read_video(path, max_side=settings.max_side)  # silent videos are fine: no audio is read
    detector = shared_detector(settings.landmarks, device=settings.device, weights=settings.landmark_weights)
    return extract_mouth_rois(video.frames, detector, size=settings.roi_size, crop_side=settings.crop_side,
                              max_gap=settings.max_gap, smooth_window=settings.smooth_window, name=str(path))
