"""The time grid every part of avdiff shares, declared once: 25 video frames/s, 16 kHz audio,
640 samples per video frame, and an STFT hop of 128 samples, i.e. 125 STFT frames/s, exactly 5
per video frame, which makes the video-to-STFT alignment exact (see `avdiff.models.lip_encoder`).

This module imports nothing, so every layer (the config schema included) can use it.
"""

VIDEO_FPS: int = 25
SAMPLE_RATE: int = 16000
SAMPLES_PER_FRAME: int = SAMPLE_RATE // VIDEO_FPS  # 640
STFT_HOP_LENGTH: int = 128
STFT_FRAMES_PER_VIDEO_FRAME: int = SAMPLES_PER_FRAME // STFT_HOP_LENGTH  # 5

assert SAMPLES_PER_FRAME * VIDEO_FPS == SAMPLE_RATE
assert STFT_FRAMES_PER_VIDEO_FRAME * STFT_HOP_LENGTH == SAMPLES_PER_FRAME
