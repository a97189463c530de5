"""Decoding of talking-face videos and their audio onto avdiff's 25 fps / 16 kHz time grid."""

from avdiff.media.audio import DecodedAudio, decode_audio, load_audio, resample
from avdiff.media.clip import AVClip, fit_length, load_clip
from avdiff.media.files import require_file
from avdiff.media.video import DecodedVideo, read_video
from avdiff.timegrid import SAMPLE_RATE, SAMPLES_PER_FRAME, VIDEO_FPS

__all__ = [
    "AVClip", "DecodedAudio", "DecodedVideo", "SAMPLE_RATE", "SAMPLES_PER_FRAME", "VIDEO_FPS",
    "decode_audio", "fit_length", "load_audio", "load_clip", "read_video",
    "require_file", "resample",
]
