"""Decoding of talking-face videos and their audio onto avdiff's 25 fps / 16 kHz time grid.

The names below load on first use (PEP 562): the video path (`avdiff.media.video`, `.files`,
`.color`) imports without torch, which the audio path's resampling needs, so the mouth front-end
can start in a process of its own before torch has loaded (`avdiff.pipeline.mouth_prefetch`).
"""

from __future__ import annotations

from avdiff.lazy import lazy_exports

_EXPORTS = {
    "AVClip": "avdiff.media.clip",
    "DecodedAudio": "avdiff.media.audio",
    "DecodedVideo": "avdiff.media.video",
    "SAMPLE_RATE": "avdiff.timegrid",
    "SAMPLES_PER_FRAME": "avdiff.timegrid",
    "VIDEO_FPS": "avdiff.timegrid",
    "decode_audio": "avdiff.media.audio",
    "fit_length": "avdiff.media.clip",
    "load_audio": "avdiff.media.audio",
    "load_clip": "avdiff.media.clip",
    "read_video": "avdiff.media.video",
    "require_file": "avdiff.media.files",
    "resample": "avdiff.media.audio",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
