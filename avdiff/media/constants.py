"""The time grid every part of avdiff shares: 25 video frames/s, 16 kHz audio, 640 samples/frame.

At 16 kHz with an STFT hop of 128 there are 125 STFT frames per second, exactly 5 per video
frame, which is what makes the video-to-STFT alignment exact (see `avdiff.models.lip_encoder`).
"""

VIDEO_FPS: int = 25
SAMPLE_RATE: int = 16000
SAMPLES_PER_FRAME: int = SAMPLE_RATE // VIDEO_FPS  # 640

assert SAMPLES_PER_FRAME * VIDEO_FPS == SAMPLE_RATE
