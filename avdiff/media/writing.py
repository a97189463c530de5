"""Writing a talking-face video (RGB frames and/or mono audio) with PyAV: for test clips and the
benchmarks' inputs (e.g. a longer clip joined from GRID clips)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_video(path: Path, frames: np.ndarray | None, fps: Fraction | int = 25,
                audio: np.ndarray | None = None, sample_rate: int = 16000, codec: str = "mpeg4") -> Path:
    """Write RGB frames (T, H, W, 3) uint8 and/or mono float audio to a container at `path`
    (mpeg4 at 4 Mb/s, or another codec such as libx264 at CRF 12; AAC audio)."""
    with av.open(str(path), mode="w") as container:
        vstream = _video_stream(container, frames, fps, codec) if frames is not None else None
        astream = None
        if audio is not None:
            astream = container.add_stream("aac", rate=sample_rate)
            astream.layout = "mono"
        if vstream is not None:
            for image in frames:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                container.mux(vstream.encode(frame))
            container.mux(vstream.encode(None))
        if astream is not None:
            _mux_audio(container, astream, audio.astype(np.float32), sample_rate)
    return path


def _video_stream(container, frames: np.ndarray, fps: Fraction | int, codec: str):
    stream = container.add_stream(codec, rate=Fraction(fps))
    stream.width, stream.height = frames.shape[2], frames.shape[1]
    stream.pix_fmt = "yuv420p"
    if codec == "mpeg4":
        stream.bit_rate = 4_000_000
    else:
        stream.options = {"crf": "12"}
    return stream


def _mux_audio(container, stream, samples: np.ndarray, sample_rate: int) -> None:
    frame_size = stream.codec_context.frame_size or 1024
    pts = 0
    for start in range(0, samples.size, frame_size):
        chunk = samples[start:start + frame_size][None, :]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = pts
        pts += chunk.shape[1]
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
