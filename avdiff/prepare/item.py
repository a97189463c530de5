"""Prepare one utterance: decode, find the mouth, write `<id>.wav` and `<id>.npy`, describe it.

Outputs are written to temporary names and renamed into place, and the manifest line (written
by the caller after this returns) is the commit point: an interrupted run leaves at worst an
orphan file that the next run overwrites.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avdiff.landmarks.base import LandmarkDetector
from avdiff.media.audio import write_wav
from avdiff.media.clip import load_clip
from avdiff.media.files import write_npy
from avdiff.mouth.extract import extract_mouth_rois
from avdiff.mouth.reliability import frame_reliability
from avdiff.prepare.item_files import audio_path, mouth_path
from avdiff.prepare.layouts import SourceItem
from avdiff.prepare.rejects import RejectedItem, check_speech
from avdiff.prepare.settings import PrepareSettings
from avdiff.timegrid import SAMPLE_RATE, VIDEO_FPS


def prepare_item(item: SourceItem, output_dir: Path, settings: PrepareSettings,
                 detector: LandmarkDetector) -> dict[str, Any]:
    """Process one item; returns its manifest entry or raises InputError with the reason."""
    max_frames = int(settings.max_duration * VIDEO_FPS)
    clip = load_clip(item.video, item.audio, max_side=settings.max_side, max_frames=max_frames)
    if clip.duration < settings.min_duration:
        raise RejectedItem(f"{item.video}: too short: {clip.duration:.2f} s "
                           f"({clip.num_frames} frames; minimum {settings.min_duration:.2f} s)")
    if clip.audio_damage:
        raise RejectedItem(f"{item.audio or item.video}: audio {clip.audio_damage}")
    if clip.audio_coverage < settings.min_audio_coverage:
        raise RejectedItem(f"{item.audio or item.video}: audio covers only {clip.audio_coverage:.0%} of the "
                           f"{clip.duration:.2f} s video")
    check_speech(clip.audio[: clip.audio_samples_decoded], item.audio or item.video, settings)
    rois = extract_mouth_rois(clip.frames, detector, size=settings.roi_size, crop_side=settings.crop_side,
                              max_gap=settings.max_gap, smooth_window=settings.smooth_window,
                              name=str(item.video))
    face_fraction = float(rois.face_ok.mean())
    if face_fraction < settings.min_face_fraction:
        raise RejectedItem(f"{item.video}: a face was usable in only {face_fraction:.0%} of its "
                           f"{clip.num_frames} frames (minimum {settings.min_face_fraction:.0%})")
    audio_rel, video_rel = audio_path(item.id), mouth_path(item.id)
    (output_dir / audio_rel).parent.mkdir(parents=True, exist_ok=True)
    write_wav(output_dir / audio_rel, clip.audio, SAMPLE_RATE)
    write_npy(output_dir / video_rel, rois.rois)
    entry: dict[str, Any] = {
        "id": item.id, "audio": audio_rel, "video": video_rel, "num_frames": clip.num_frames,
        "duration": round(clip.duration, 6), "speaker": item.speaker,
    }
    if item.text:
        entry["text"] = item.text
    entry["face_ok"] = [bool(v) for v in rois.face_ok]
    reliability = frame_reliability(rois.rois, rois.face_ok, rois.landmarks.found)
    entry["reliability"] = [round(float(v), 3) for v in reliability]
    return entry
