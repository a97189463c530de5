"""Audio representations: the compressed complex STFT the score network works on."""

from avdiff.audio.spectrogram import SpectrogramTransform

__all__ = ["SpectrogramTransform"]
