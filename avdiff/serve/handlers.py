"""What the web app does, as plain functions of file paths and settings (no Gradio here), so tests
can call them without a browser.

Every handler returns an `Outcome`: the input and output audio as (sample rate, int16 samples)
(int16 so that Gradio plays them at their true level; it peak-normalises float arrays), a figure
with their spectrograms side by side, and a one-paragraph message. Errors never escape: an
`AVDiffError` (a problem the user can fix) becomes its own message, anything else a short line,
with the traceback kept for the server's log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avdiff.errors import AVDiffError, InputError
from avdiff.inference.choices import AUTO
from avdiff.media.files import MOUTH_ARRAY_SUFFIX
from avdiff.pipeline.shipped import DEFAULT_ENHANCER, DEFAULT_GENERATOR

logger = logging.getLogger("avdiff.serve")

Audio = tuple[int, np.ndarray]  # (sample rate, int16 samples: (N,) or (N, channels))
MAX_MESSAGE_CHARS = 400  # an unexpected error's text is cut here: a line for the user, not a dump


@dataclass(frozen=True)
class ServeSettings:
    """The models behind the app and how they run (the `avdiff serve` flags)."""

    generator: str = DEFAULT_GENERATOR  # video-to-speech model: a shipped name or a folder
    enhancer: str = DEFAULT_ENHANCER  # enhancement model
    device: str | None = None  # None: cuda if available
    dtype: str | None = None  # "float32" / "bfloat16"; None: the pipeline's default
    backend: str = AUTO  # the score network's engine (avdiff.inference)
    landmarks: str | None = None  # landmark backend for video files; None: the pipeline's default
    landmark_weights: str | None = None

    def landmark_options(self) -> dict[str, str]:
        """The landmark keyword arguments of `generate` / `enhance` that were set."""
        options = {"landmarks": self.landmarks, "landmark_weights": self.landmark_weights}
        return {name: value for name, value in options.items() if value is not None}


@dataclass
class Outcome:
    """What one request gives back to the page."""

    message: str
    input_audio: Audio | None = None
    output_audio: Audio | None = None
    figure: Any = None  # a matplotlib Figure, or None
    failed: bool = False


class Pipelines:
    """Each model folder loaded once, on first use, then shared by every request (thread-safe)."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self._loaded: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, model: str) -> Any:
        """The pipeline of `model` (a shipped name or a folder)."""
        from avdiff.pipeline.pipeline import AVDiffusionPipeline

        with self._lock:
            if model not in self._loaded:
                self._loaded[model] = AVDiffusionPipeline.from_pretrained(
                    model, device=self.settings.device, dtype=self.settings.dtype, backend=self.settings.backend)
            return self._loaded[model]

    def loaded(self) -> list[str]:
        """Models loaded so far."""
        return list(self._loaded)


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] (clipped beyond) as int16, keeping the level."""
    return (np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0) * 32767).astype(np.int16)


def _power_db(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Log power (dB) of a mono signal, 32 ms Hann windows every 8 ms: (bins, frames)."""
    size, hop = int(0.032 * sample_rate), int(0.008 * sample_rate)
    audio = np.pad(audio, (0, max(0, size - len(audio))))
    frames = np.lib.stride_tricks.sliding_window_view(audio, size)[::hop] * np.hanning(size)
    return 10 * np.log10(np.abs(np.fft.rfft(frames, axis=1)).T ** 2 + 1e-10)


def spectrogram_figure(signals: dict[str, Audio]) -> Any:
    """The signals' spectrograms side by side on one colour scale (first channel of each), up to
    the lowest rate's Nyquist frequency, so that both show the same band."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    powers = {name: (_power_db(samples.reshape(len(samples), -1)[:, 0] / 32767.0, rate), rate, len(samples))
              for name, (rate, samples) in signals.items()}
    top = max(float(db.max()) for db, _, _ in powers.values())
    band_khz = min(rate for rate, _ in signals.values()) / 2000
    figure = Figure(figsize=(4.2 * len(signals), 2.6), dpi=80, layout="constrained")
    axes = figure.subplots(1, len(signals), squeeze=False)[0]
    for ax, (name, (db, rate, length)) in zip(axes, powers.items()):
        ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=top - 80, vmax=top,
                  extent=(0, length / rate, 0, rate / 2000))
        ax.set_ylim(0, band_khz)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("time (s)", fontsize=8)
        ax.set_ylabel("kHz", fontsize=8)
        ax.tick_params(labelsize=7)
    return figure


def _short_paths(message: str, values: tuple[Any, ...]) -> str:
    """`message` with the server-side paths of uploaded files cut to their names."""
    for value in values:
        if isinstance(value, str) and len(Path(value).parts) > 1:
            message = message.replace(value, Path(value).name)
    return message


def error_message(error: Exception, values: tuple[Any, ...] = ()) -> str:
    """One paragraph for the page: an AVDiffError's own text, anything else its type and first
    words (the traceback goes to the server's log); paths among `values` cut to their names."""
    if isinstance(error, AVDiffError):
        return _short_paths(f"Error: {error}", values)
    logger.exception("avdiff serve: request failed", exc_info=error)
    text = " ".join(str(error).split())[:MAX_MESSAGE_CHARS] or "no details"
    return _short_paths(f"Error: the request failed ({type(error).__name__}: {text})", values)


def run_safely(task: Callable[..., Outcome], *args: Any, **kwargs: Any) -> Outcome:
    """`task(...)`, or an Outcome whose message says what went wrong (never a traceback)."""
    try:
        return task(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - every failure becomes a message on the page
        return Outcome(message=error_message(error, args), failed=True)


def generation_defaults(pipelines: Pipelines) -> tuple[str, int, float]:
    """The video-to-speech model's own (sampler, steps, guidance): what the page shows first."""
    plan = pipelines.get(pipelines.settings.generator).generation_plan()
    return plan.sampler.name, plan.sampler.steps, plan.sampler.guidance_scale


def enhancement_defaults(pipelines: Pipelines, method: str | None = None) -> tuple[str, int, float]:
    """(method, steps, guidance) that the enhancement model runs for `method` (None: its default
    method); a preset such as udiffse-paper brings its own steps."""
    plan = pipelines.get(pipelines.settings.enhancer).enhancement_plan(method)
    return plan.method, plan.settings.steps, plan.guidance_scale


def _optional_steps(steps: float | None) -> int | None:
    """A steps control's value: None (the model's) when empty or 0, else a whole number >= 1."""
    if steps is None or steps == 0:
        return None
    if not np.isfinite(steps) or steps != int(steps) or steps < 1:
        raise InputError(f"steps must be a whole number >= 1, got {steps:g}")
    return int(steps)


def _optional_guidance(guidance: float | None) -> float | None:
    """A guidance control's value: None (the model's), else a finite number."""
    if guidance is not None and not np.isfinite(guidance):
        raise InputError(f"guidance must be a finite number, got {guidance}")
    return guidance


def _seed(seed: float | None) -> int:
    """A seed control's value: empty means 0."""
    if seed is None:
        return 0
    if not np.isfinite(seed) or seed != int(seed):
        raise InputError(f"the seed must be a whole number, got {seed:g}")
    return int(seed)


def _source_audio(path: Path) -> Audio | None:
    """The sound track of a video (what the lips said), or None where it has none."""
    from avdiff.media.audio import decode_audio

    try:
        decoded = decode_audio(path)
    except AVDiffError:
        return None
    return decoded.sample_rate, to_int16(decoded.samples)


def _pick_video(video: str | None, mouth_crops: str | None) -> Path:
    """The one lip input of a video-to-speech request."""
    if video and mouth_crops:
        raise InputError("give either a video or a mouth-crop .npy, not both (clear one of them)")
    if not (video or mouth_crops):
        raise InputError("upload or record a talking-face video, or upload a mouth-crop .npy")
    return Path(video or mouth_crops)


def _notes(notes: list[str]) -> str:
    return "".join(f"\nNote: {note}" for note in notes)


def generate_speech(pipelines: Pipelines, video: str | None, mouth_crops: str | None = None, sampler: str | None = None,
                    steps: float | None = None, guidance: float | None = None, seed: float | None = 0,
                    show_progress: bool = False) -> Outcome:
    """Video-to-speech: the speech generated from the lips of `video` (or of the `mouth_crops` .npy)."""
    source = _pick_video(video, mouth_crops)
    steps, guidance, seed = _optional_steps(steps), _optional_guidance(guidance), _seed(seed)
    pipeline = pipelines.get(pipelines.settings.generator)
    started = time.perf_counter()
    result = pipeline.generate(source, sampler=sampler or None, steps=steps, guidance_scale=guidance, seed=seed,
                               show_progress=show_progress, **pipelines.settings.landmark_options())
    seconds = time.perf_counter() - started
    output = (result.sample_rate, to_int16(result.audio[0]))
    original = _source_audio(source) if source.suffix.lower() != MOUTH_ARRAY_SUFFIX else None
    signals = {"original sound track": original} if original else {}
    signals["generated from the lips"] = output
    message = (f"{len(result.audio[0]) / result.sample_rate:.2f} s of speech from {source.name} in {seconds:.1f} s: "
               f"{result.plan.describe()}, seed {seed}, {result.network_calls} network calls{_notes(result.notes)}")
    return Outcome(message=message, input_audio=original, output_audio=output, figure=spectrogram_figure(signals))


def enhance_speech(pipelines: Pipelines, noisy: str | None, video: str | None = None, method: str | None = None,
                   steps: float | None = None, guidance: float | None = None, seed: float | None = 0,
                   show_progress: bool = False) -> Outcome:
    """Enhancement of the `noisy` recording, audio-only or with the lips of `video` (its rate,
    length and channels kept, as `avdiff enhance` does)."""
    from avdiff.media.audio import decode_audio_channels
    from avdiff.pipeline.channels import enhance_channels

    if not noisy:
        raise InputError("upload or record noisy speech first")
    steps, guidance, seed = _optional_steps(steps), _optional_guidance(guidance), _seed(seed)
    pipeline = pipelines.get(pipelines.settings.enhancer)
    plan = pipeline.enhancement_plan(method or None, steps=steps, guidance_scale=guidance)
    decoded = decode_audio_channels(noisy)
    started = time.perf_counter()
    result = enhance_channels(pipeline, Path(noisy), plan=plan, video=video or None, seed=seed,
                              show_progress=show_progress, **pipelines.settings.landmark_options())
    seconds = time.perf_counter() - started
    original = (decoded.sample_rate, to_int16(decoded.samples.T if len(decoded.samples) > 1 else decoded.samples[0]))
    output = (result.sample_rate, to_int16(result.audio))
    mode = "audio-visual" if video else "audio-only"
    message = (f"{len(result.audio) / result.sample_rate:.2f} s enhanced in {seconds:.1f} s ({mode}): "
               f"{result.plan.describe()}, seed {seed}, {result.network_calls} network calls{_notes(result.notes)}")
    figure = spectrogram_figure({"noisy": original, "enhanced": output})
    return Outcome(message=message, input_audio=original, output_audio=output, figure=figure)
