"""Helpers for the video front-end tests: where the real GRID clips are, and writing test videos."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
GRID_DIR = DATA_DIR / "grid"
GRID_CLIPS = sorted(GRID_DIR.glob("*.mpg")) if GRID_DIR.is_dir() else []

requires_grid = pytest.mark.skipif(
    not GRID_CLIPS, reason=f"real GRID clips not found in {GRID_DIR} (the shared data folder "
    "../shared/data/grid beside the repository); skipping tests on real video")


def write_video(path: Path, frames: np.ndarray | None, fps: Fraction | int = 25,
                audio: np.ndarray | None = None, sample_rate: int = 16000, codec: str = "mpeg4") -> Path:
    """Write RGB frames (T, H, W, 3) and/or mono float audio to a container with PyAV."""
    with av.open(str(path), mode="w") as container:
        vstream = astream = None
        if frames is not None:
            vstream = container.add_stream(codec, rate=Fraction(fps))
            vstream.width, vstream.height = frames.shape[2], frames.shape[1]
            vstream.pix_fmt = "yuv420p"
            if codec == "mpeg4":
                vstream.bit_rate = 4_000_000
            else:
                vstream.options = {"crf": "12"}
        if audio is not None:
            astream = container.add_stream("aac", rate=sample_rate)
            astream.layout = "mono"
        if vstream is not None:
            for image in frames:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                container.mux(vstream.encode(frame))
            container.mux(vstream.encode(None))
        if astream is not None:
            frame_size = astream.codec_context.frame_size or 1024
            samples = audio.astype(np.float32)
            pts = 0
            for start in range(0, samples.size, frame_size):
                chunk = samples[start:start + frame_size][None, :]
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
                frame.sample_rate = sample_rate
                frame.pts = pts
                pts += chunk.shape[1]
                container.mux(astream.encode(frame))
            container.mux(astream.encode(None))
    return path


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
