"""The phoneme sounding at each video frame of a training crop, from a corpus's `alignments.jsonl`.

`avdiff synth` writes each utterance's phoneme times (espeak-ng mnemonics, seconds from the clip's
start). A lip encoder trained to name them (`training.phone_loss_weight`) must tell apart, from the
mouth and its context, sounds whose envelopes differ where the mouth barely does (b / m, d / n / t):
a regression of the envelope alone averages them (BENCHMARKS.md, "Lips that name the phonemes").
Classes are the mnemonics of `avdiff.synth.visemes.PHONEME_VISEMES` with stress marks removed;
pauses and frames between phonemes are class 0 (silence); mnemonics outside the table and frames
outside the clip are IGNORE_INDEX, which the loss skips.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from avdiff.errors import InputError
from avdiff.synth.visemes import PHONEME_VISEMES
from avdiff.timegrid import VIDEO_FPS

ALIGNMENTS_NAME = "alignments.jsonl"
IGNORE_INDEX = -100  # torch.nn.functional.cross_entropy's default ignore_index
SILENCE = "<silence>"
PHONE_CLASSES: tuple[str, ...] = (SILENCE, *sorted(name for name, visemes in PHONEME_VISEMES.items()
                                                   if visemes != ("rest",)))
_CLASS_INDEX = {name: index for index, name in enumerate(PHONE_CLASSES)}

Phonemes = list[tuple[str, float, float]]


def phone_class(mnemonic: str) -> int:
    """Class index of an espeak-ng mnemonic (stress marks ignored; pauses are silence), IGNORE_INDEX if unknown."""
    key = mnemonic.lstrip("',%=")
    if key in PHONEME_VISEMES and PHONEME_VISEMES[key] == ("rest",):
        return 0
    if key not in _CLASS_INDEX and key.endswith(("#", ";")):
        key = key[:-1]
    return _CLASS_INDEX.get(key, IGNORE_INDEX)


def read_alignments(manifest: Path) -> dict[str, Phonemes]:
    """Item id -> its phoneme times, from the alignments.jsonl beside `manifest`; an InputError if none."""
    path = manifest.parent / ALIGNMENTS_NAME
    if not path.is_file():
        raise InputError(f"{manifest}: no {ALIGNMENTS_NAME} beside it; phone labels need a corpus made by "
                         "`avdiff synth` (or set training.phone_loss_weight: 0)")
    out: dict[str, Phonemes] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            row = json.loads(line)
            out[row["id"]] = [(str(p), float(a), float(b)) for p, a, b in row["phonemes"]]
        except (ValueError, KeyError, TypeError) as error:
            raise InputError(f"{path}:{number}: not an alignment row ({error})") from error
    return out


def sounding_phonemes(phonemes: Phonemes, start_frame: int, frames: int) -> list[str | None]:
    """The mnemonic sounding at the centre of video frames start_frame .. start_frame + frames - 1
    (None between phonemes)."""
    centres = (start_frame + np.arange(frames) + 0.5) / VIDEO_FPS
    out: list[str | None] = [None] * frames
    for mnemonic, start, end in phonemes:
        for index in np.flatnonzero((centres >= start) & (centres < end)):
            out[index] = mnemonic
    return out


def frame_phones(phonemes: Phonemes | None, start_frame: int, frames: int, clip_frames: int) -> np.ndarray:
    """(frames,) int64 class of the phoneme at the centre of video frames start_frame .. start_frame +
    frames - 1 (silence between phonemes); IGNORE_INDEX past the clip's `clip_frames` and everywhere
    when `phonemes` is None."""
    labels = np.full(frames, IGNORE_INDEX, dtype=np.int64)
    if phonemes is None:
        return labels
    inside = max(0, min(frames, clip_frames - start_frame))
    sounding = sounding_phonemes(phonemes, start_frame, inside)
    labels[:inside] = [0 if mnemonic is None else phone_class(mnemonic) for mnemonic in sounding]
    return labels
