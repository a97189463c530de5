"""Prepare one audio-only utterance: decode any rate and channel count, check it, cut long
recordings at pauses, write `<id>.wav` (16 kHz mono) per piece and describe each piece.

A recording longer than `settings.max_utterance_seconds` becomes pieces `<id>@00`, `<id>@01`,
... (`avdiff.prepare.segment`). Manifest items of audio-only speech have `"video": null`; their
`num_frames` counts 25 fps frames of audio, so crops use the same time grid as clips with video.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avdiff.media.audio import decode_audio, resample, write_wav
from avdiff.prepare.item_files import audio_path
from avdiff.prepare.layouts import SourceItem
from avdiff.prepare.rejects import RejectedItem, check_speech
from avdiff.prepare.segment import split_at_pauses
from avdiff.prepare.settings import PrepareSettings
from avdiff.timegrid import SAMPLE_RATE, SAMPLES_PER_FRAME

SEGMENT_SEPARATOR = "@"  # <source id>@<piece>: pieces of one long recording


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
        audio_rel = audio_path(piece_id)
        (output_dir / audio_rel).parent.mkdir(parents=True, exist_ok=True)
        write_wav(output_dir / audio_rel, samples[start:end], SAMPLE_RATE)
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
