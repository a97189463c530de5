"""avdiff: diffusion-based audio-visual speech generation.

A lip-embedding encoder conditions a score-based diffusion model on complex STFT
spectrograms. The same network generates speech from silent video and, as a diffusion
posterior sampler, enhances noisy speech with or without the speaker's lips.
"""

__version__ = "0.1.0"

from avdiff.cpu import apply_cpu_defaults

apply_cpu_defaults()  # before anything imports torch (avdiff/cpu.py says why)
