"""Helpers for the video front-end tests: where the real GRID clips are, and writing test videos."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from avdiff.media.writing import write_video  # noqa: F401  (the tests import it from here)

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
GRID_DIR = DATA_DIR / "grid"
GRID_CLIPS = sorted(GRID_DIR.glob("*.mpg")) if GRID_DIR.is_dir() else []

requires_grid = pytest.mark.skipif(
    not GRID_CLIPS, reason=f"real GRID clips not found in {GRID_DIR} (the shared data folder "
    "../shared/data/grid beside the repository); skipping tests on real video")


def decode_native(path: Path) -> tuple[list[float], list[np.ndarray]]:
    """All frames of a video at its own timestamps (no resampling)."""
    with av.open(str(path)) as container:
        pairs = [(float(f.time), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    return [t for t, _ in pairs], [img for _, img in pairs]


def reencode_fps(src: Path, dst: Path, fps: Fraction | int, with_audio: bool = True) -> Path:
    """Re-encode `src` at another frame rate (each output frame shows the nearest source frame)."""
    times, images = decode_native(src)
    duration = times[-1] + (times[1] - times[0]) - times[0]
    count = int(round(duration * float(fps)))
    frames = np.stack([images[int(np.argmin([abs(t - times[0] - i / float(fps)) for t in times]))]
                       for i in range(count)])
    audio = None
    if with_audio:
        from avdiff.media import load_audio

        audio = load_audio(src, 16000)
    return write_video(dst, frames, fps=fps, audio=audio, codec="libx264")
