"""The bad-input corpus of issue 15, made on the fly (no binary file is committed).

Each maker writes files into a folder and returns its `Case`s: the file, and what avdiff must do
with it, as decided in the README ("Inputs that are refused or repaired"): write a valid output
(`refuse` None; `note` names the repair it must announce, if any) or refuse it with one clear
line naming the file and the reason (`refuse`, a substring of that reason). The tests
(tests/test_bad_inputs.py) and tests/reliability/bad_inputs.py run the same cases through the CLI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from avfixtures import write_video

RATE = 16000
ANY_REASON = ""  # refused, with whatever reason FFmpeg gives (random bytes can be probed as anything)


@dataclass(frozen=True)
class Case:
    """One input and its expected outcome for one command."""

    path: Path
    refuse: str | None = None  # None: written and valid; else a substring of the one-line reason
    note: str | None = None  # for written items: a substring of the note announcing a repair
    channels: int = 1  # channels of a written enhance output


def speech_like(seconds: float, rate: int = RATE, seed: int = 0, channels: int = 1) -> np.ndarray:
    """A voiced, syllable-modulated harmonic signal (peak 0.3), (N,) or (N, channels)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate))) / rate
    out = []
    for channel in range(channels):
        f0 = 110 + 40 * channel + 10 * rng.random()
        voiced = sum(np.sin(2 * np.pi * k * f0 * t + rng.random()) / k for k in range(1, 12))
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t + channel)
        signal = envelope * voiced + 0.02 * rng.standard_normal(t.size)
        out.append(0.3 * signal / np.abs(signal).max())
    audio = np.stack(out, axis=1).astype(np.float32)
    return audio[:, 0] if channels == 1 else audio


def random_bytes(path: Path, size: int = 4096, seed: int = 1) -> Path:
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def truncated_copy(source: Path, path: Path, fraction: float) -> Path:
    """The first `fraction` of `source`'s bytes."""
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def _with_nan(audio: np.ndarray) -> np.ndarray:
    audio = audio.copy()
    audio[[100, 2000, 3000]] = np.nan
    return audio


def _with_inf(audio: np.ndarray) -> np.ndarray:
    audio = audio.copy()
    audio[500] = np.inf
    return audio


def _truncated(folder: Path, name: str, fmt: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        whole = folder / f".whole-{name}"
        sf.write(whole, speech_like(1.0, seed=5), RATE, format=fmt)
        truncated_copy(whole, path, 0.6)
        whole.unlink()
    return make


def _audio_table(folder: Path, seconds: float) -> list[tuple[str, Callable[[Path], None], tuple, str | None]]:
    """(file name, writer, (enhance refuse, enhance note, channels), prepare refuse) per audio case."""
    x = speech_like(seconds)
    wav = lambda audio, rate=RATE, subtype=None: (lambda p: sf.write(p, audio, rate, subtype=subtype))  # noqa: E731
    return [
        ("speech 16k.wav", wav(x), (None, None, 1), None),
        ("ñandú señal.flac", wav(x), (None, None, 1), None),
        ("rate 8000.wav", wav(speech_like(seconds, 8000), 8000), (None, "resampled from 8000 Hz", 1), None),
        ("rate 22050.wav", wav(speech_like(seconds, 22050), 22050), (None, "resampled from 22050 Hz", 1), None),
        ("rate 44100.wav", wav(speech_like(seconds, 44100), 44100), (None, "resampled from 44100 Hz", 1), None),
        ("rate 48000.flac", wav(speech_like(seconds, 48000), 48000), (None, "resampled from 48000 Hz", 1), None),
        ("stereo.wav", wav(speech_like(seconds, channels=2)), (None, "2 channels, each enhanced", 2), None),
        ("dual mono.wav", wav(np.stack([x, x], axis=1)), (None, "2 identical channels, enhanced once", 2), None),
        ("six channels.wav", wav(speech_like(seconds, channels=6)), (None, "6 channels, each enhanced", 6), None),
        ("int8.wav", wav(x, subtype="PCM_U8"), (None, None, 1), None),
        ("int24.wav", wav(x, subtype="PCM_24"), (None, None, 1), None),
        ("int32.wav", wav(x, subtype="PCM_32"), (None, None, 1), None),
        ("float32.wav", wav(x, subtype="FLOAT"), (None, None, 1), None),
        ("float64.wav", wav(x, subtype="DOUBLE"), (None, None, 1), None),
        ("nan samples.wav", wav(_with_nan(x), subtype="FLOAT"), ("3 samples are NaN or infinite", None, 1), "NaN"),
        ("inf sample.wav", wav(_with_inf(x), subtype="FLOAT"), ("1 samples are NaN or infinite", None, 1), "NaN"),
        ("all zero.wav", wav(np.zeros_like(x)), (None, "the input is silent", 1), "silent"),
        ("clipped.wav", wav(np.where(x >= 0, 1.0, -1.0), subtype="FLOAT"), (None, "clipped", 1), "clipped"),
        ("short 0.1s.wav", wav(speech_like(0.1)), (None, None, 1), "too short"),
        ("empty.wav", lambda p: p.write_bytes(b""), ("file is empty", None, 1), "file is empty"),
        ("header only.wav", wav(np.zeros(0, np.float32)), ("no samples", None, 1), "no samples"),
        ("random wav.wav", random_bytes, (ANY_REASON, None, 1), ANY_REASON),
        ("random flac.flac", random_bytes, (ANY_REASON, None, 1), ANY_REASON),
        ("truncated wav.wav", _truncated(folder, "t.wav", "WAV"), (None, "truncated", 1), "truncated"),
        ("truncated flac.flac", _truncated(folder, "t.flac", "FLAC"), (None, "damaged or truncated", 1),
         "damaged or truncated"),
    ]


def audio_cases(folder: Path, command: str = "enhance", seconds: float = 0.6,
                long_minutes: float | None = None) -> list[Case]:
    """Noisy-speech inputs for `enhance` or clean speech for `prepare --layout speech` (`command`),
    written into `folder`; `long_minutes` adds a file that long (the slow, opt-in case)."""
    folder.mkdir(parents=True, exist_ok=True)
    cases = []
    table = _audio_table(folder, seconds)
    if long_minutes:
        table.append(("long.flac", lambda p: sf.write(p, speech_like(60 * long_minutes), RATE), (None, None, 1), None))
    for name, make, (refuse, note, channels), prepare_refuse in table:
        make(folder / name)
        if command == "prepare":
            cases.append(Case(folder / name, prepare_refuse))
        else:
            cases.append(Case(folder / name, refuse, note, channels))
    return cases


def _grid_frames(clip: Path) -> tuple[np.ndarray, np.ndarray]:
    """Frames (RGB, 25 fps) and 16 kHz audio of a real GRID clip."""
    from avdiff.media import load_clip

    loaded = load_clip(clip)
    return loaded.frames, loaded.audio


def _no_face(seconds: float = 1.2) -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (int(25 * seconds), 96, 128, 3), dtype=np.uint8)


def video_cases(folder: Path, grid_clips: list[Path]) -> list[Case]:
    """Inputs of `generate` (mouth-crop arrays and video files) in `folder`; the video files need
    two real GRID clips (`grid_clips`), as a real face is what landmarks must find."""
    folder.mkdir(parents=True, exist_ok=True)
    crops = np.random.default_rng(0).integers(0, 256, (25, 40, 40), dtype=np.uint8)
    np.save(folder / "mouth crops.npy", crops)
    np.save(folder / "ñ 0.1s crops.npy", crops[:3])
    np.save(folder / "float crops.npy", crops.astype(np.float32))
    (folder / "empty.npy").write_bytes(b"")
    random_bytes(folder / "random bytes.npy")
    random_bytes(folder / "random bytes.mp4")
    (folder / "empty.mp4").write_bytes(b"")
    write_video(folder / "audio only.mp4", None, audio=speech_like(1.0))
    write_video(folder / "no face.mp4", _no_face(), audio=speech_like(1.2))
    frames, audio = _grid_frames(grid_clips[0])
    write_video(folder / "whole.mp4", frames, audio=audio)
    truncated_copy(folder / "whole.mp4", folder / "truncated.mp4", 0.5)
    (folder / "whole.mp4").unlink()
    truncated_copy(grid_clips[1], folder / "truncated.mpg", 0.35)
    write_video(folder / "grid no audio.mp4", frames)
    shutil.copy(grid_clips[1], folder / "grid clip ü.mpg")
    cases = [("mouth crops.npy", None), ("ñ 0.1s crops.npy", None), ("grid no audio.mp4", None),
             ("grid clip ü.mpg", None), ("float crops.npy", "expected uint8 mouth crops"),
             ("empty.npy", "cannot read mouth crops"), ("random bytes.npy", "cannot read mouth crops"),
             ("random bytes.mp4", ANY_REASON), ("empty.mp4", "file is empty"),
             ("audio only.mp4", "has no video stream"), ("no face.mp4", "no face found"),
             ("truncated.mp4", "cannot open as a media file"), ("truncated.mpg", "damaged or truncated")]
    return [Case(folder / name, refuse) for name, refuse in cases]


def prepare_cases(folder: Path, grid_clips: list[Path]) -> list[Case]:
    """A `prepare --layout folder` corpus in `folder`: a real clip (in a folder whose name has a space
    and a non-ASCII letter), one with longer audio than video, and one of each kind of bad video."""
    folder.mkdir(parents=True, exist_ok=True)
    good = folder / "talker ñ" / "grid clip.mpg"
    good.parent.mkdir()
    shutil.copy(grid_clips[0], good)
    (good.with_suffix(".txt")).write_text("bin blue at f two now\n", encoding="utf-8")
    frames, audio = _grid_frames(grid_clips[0])
    write_video(folder / "audio longer.mp4", frames, audio=np.concatenate([audio, audio[:16000]]))
    write_video(folder / "audio shorter.mp4", frames, audio=audio[: len(audio) // 3])
    truncated_copy(grid_clips[1], folder / "truncated mpeg.mpg", 0.35)
    write_video(folder / "whole.mp4", frames[:25], audio=audio[:16000])
    truncated_copy(folder / "whole.mp4", folder / "truncated.mp4", 0.5)
    (folder / "whole.mp4").unlink()
    (folder / "empty.mp4").write_bytes(b"")
    random_bytes(folder / "random bytes.mp4")
    write_video(folder / "audio only.mp4", None, audio=speech_like(1.0))
    write_video(folder / "no audio.mp4", frames[:25])
    write_video(folder / "no face.mp4", _no_face(), audio=speech_like(1.2))
    write_video(folder / "nan sidecar.mp4", _no_face(), audio=speech_like(1.2))
    sf.write(folder / "nan sidecar.wav", _with_nan(speech_like(1.2)), RATE, subtype="FLOAT")
    cases = [(good, None), (folder / "audio longer.mp4", None),
             (folder / "audio shorter.mp4", "audio covers only"),
             (folder / "truncated mpeg.mpg", "damaged or truncated"), (folder / "truncated.mp4", "cannot open"),
             (folder / "empty.mp4", "file is empty"), (folder / "random bytes.mp4", ANY_REASON),
             (folder / "audio only.mp4", "has no video stream"), (folder / "no audio.mp4", "has no audio stream"),
             (folder / "no face.mp4", "no face found"), (folder / "nan sidecar.wav", "NaN")]
    return [Case(path, refuse) for path, refuse in cases]


def evaluate_cases(folder: Path) -> tuple[Path, Path, list[Case]]:
    """Reference and estimate folders for `evaluate`; an estimate case's `note` is the reason its
    value is left out of the means (listed in metrics.md), `refuse` the reason it is not scored."""
    reference, estimate = folder / "reference ñ", folder / "estimate"
    reference.mkdir(parents=True, exist_ok=True)
    estimate.mkdir(parents=True, exist_ok=True)
    names = ["good", "identical", "silent", "nan", "empty", "random bytes", "shorter", "rate 8000", "stereo",
             "missing"]
    refs = {name: speech_like(1.0, seed=i) for i, name in enumerate(names)}
    for name, audio in refs.items():
        sf.write(reference / f"{name}.wav", audio, RATE)
    noise = 0.05 * np.random.default_rng(9).standard_normal(RATE).astype(np.float32)
    sf.write(estimate / "good.wav", refs["good"] + noise, RATE)
    sf.write(estimate / "identical.wav", refs["identical"], RATE)
    sf.write(estimate / "silent.wav", np.zeros(RATE, np.float32), RATE)
    sf.write(estimate / "nan.wav", _with_nan(refs["nan"]), RATE, subtype="FLOAT")
    (estimate / "empty.wav").write_bytes(b"")
    random_bytes(estimate / "random bytes.wav")
    sf.write(estimate / "shorter.wav", refs["shorter"][: RATE // 2], RATE)
    from avdiff.media import resample

    sf.write(estimate / "rate 8000.wav", resample(refs["rate 8000"] + noise, RATE, 8000), 8000)
    sf.write(estimate / "stereo.wav", np.stack([refs["stereo"] + noise, refs["stereo"]], axis=1), RATE)
    sf.write(estimate / "extra.wav", noise, RATE)
    cases = [Case(estimate / "good.wav"), Case(estimate / "identical.wav", note="+inf"),
             Case(estimate / "silent.wav", note="the estimate is silent"),
             Case(estimate / "nan.wav", "NaN"), Case(estimate / "empty.wav", "file is empty"),
             Case(estimate / "random bytes.wav", ANY_REASON), Case(estimate / "shorter.wav", "longer"),
             Case(estimate / "rate 8000.wav"), Case(estimate / "stereo.wav")]
    return reference, estimate, cases


def unwritable_folders(root: Path) -> dict[str, Path]:
    """Output folders no run can write to: below a regular file (for anyone), and a read-only folder
    (only where this process cannot write to it anyway: not for root, which ignores permissions)."""
    blocker = root / "a file"
    blocker.write_text("not a folder")
    folders = {"below a file": blocker / "out"}
    read_only = root / "read only"
    read_only.mkdir()
    read_only.chmod(0o555)
    if not os.access(read_only, os.W_OK):
        folders["read-only"] = read_only
    return folders


def lines_naming(text: str, path: Path) -> list[str]:
    """The lines of `text` that name `path`'s file."""
    return [line for line in text.splitlines() if path.name in line]
