"""Prepare one audio-only utterance: decode any rate and channel count, check it, cut long
recordings at pauses, write `<id>.wav` (16 kHz mono) per piece and describe each piece.

A recording longer than `settings.max_utterance_seconds` becomes pieces `<id>@00`, `<id>@01`,
... (`avdiff.prepare.segment`). Manifest items of audio-only speech have `"video": null`; their
`num_frames` counts 25 fps frames of audio, so crops use the same time grid as clips with video.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from avdiff.media.audio import decode_audio, resample
from avdiff.prepare.item import ITEMS_DIR, RejectedItem, atomic_write_wav
from avdiff.prepare.layouts import SourceItem
from avdiff.prepare.segment import split_at_pauses
from avdiff.prepare.settings import PrepareSettings
from avdiff.timegrid import SAMPLE_RATE, SAMPLES_PER_FRAME

SILENT_PEAK = 10 ** (-60 / 20)  # -60 dBFS
CLIPPED_LEVEL = 0.999
SEGMENT_SEPARATOR = "@"  # <source id>@<piece>: pieces of one long recording


def check_speech(samples: np.ndarray, where: Path, settings: PrepareSettings) -> None:
    """RejectedItem for audio that cannot train a prior: NaN, silent, clipped or too short."""
    if not np.isfinite(samples).all():
        raise RejectedItem(f"{where}: contains NaN or infinite samples")
    duration = len(samples) / SAMPLE_RATE
    if duration < settings.min_duration:
        raise RejectedItem(f"{where}: too short: {duration:.2f} s (minimum {settings.min_duration:.2f} s)")
    peak = float(np.abs(samples).max())
    if peak < SILENT_PEAK:
        raise RejectedItem(f"{where}: silent (peak {20 * math.log10(max(peak, 1e-12)):.0f} dBFS)")
    clipped = int(np.count_nonzero(np.abs(samples) >= CLIPPED_LEVEL))
    if clipped > max(10, 0.001 * len(samples)):
        raise RejectedItem(f"{where}: clipped ({clipped} samples at full scale)")


def prepare_audio_item(item: SourceItem, output_dir: Path, settings: PrepareSettings) -> list[dict[str, Any]]:
    """Process one audio-only item; returns its manifest entries or raises InputError with the reason."""
    decoded = decode_audio(item.source)
    if decoded.damage:
        raise RejectedItem(f"{item.source}: {decoded.damage}")
    samples = resample(decoded.samples, decoded.sample_rate, SAMPLE_RATE)
    check_speech(samples, item.source, settings)
    pieces = split_at_pauses(samples, SAMPLE_RATE, settings.max_utterance_seconds, settings.min_duration)
    entries = []
    for number, (start, end) in enumerate(pieces):
        piece_id = item.id if len(pieces) == 1 else f"{item.id}{SEGMENT_SEPARATOR}{number:02d}"
        audio_rel = f"{ITEMS_DIR}/{piece_id}.wav"
        (output_dir / audio_rel).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_wav(output_dir / audio_rel, samples[start:end])
        entry: dict[str, Any] = {
            "id": piece_id, "audio": audio_rel, "video": None,
            "num_frames": -(-(end - start) // SAMPLES_PER_FRAME),
            "duration": round((end - start) / SAMPLE_RATE, 6), "speaker": item.speaker,
        }
        if item.text and len(pieces) == 1:  # a transcript cannot be split without an alignment
            entry["text"] = item.text
        entries.append(entry)
    return entries


def source_id(entry_id: str) -> str:
    """The id of the recording a manifest item came from (pieces share their recording's)."""
    return entry_id.split(SEGMENT_SEPARATOR, 1)[0]
