"""Offline speech recognisers for WER: the GRID grammar (closed set) and Whisper (open set).

- `grid`: pocketsphinx's en-us acoustic model and dictionary (inside its wheel) searching the
  GRID grammar as a JSGF (any command, colour, preposition, letter, digit, adverb): the usual
  closed-set GRID task, about 3-5 % WER on clean corpus speech and about 85 % by chance.
- a CTranslate2 Whisper folder (`model.bin` + `config.json`, e.g. from
  `../shared/tools/whisper-base.sh`): faster-whisper, English, greedy, int8 on the CPU.
Both are loaded from local files only; `avdiff.evaluation.wer.load_transcriber` picks one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avdiff.grid_grammar import SLOT_NAMES, SLOTS

GRID = "grid"
SLOT_KEYS = tuple(f"slot_{name}" for name in SLOT_NAMES)  # per-slot accuracy columns of GRID references


def grid_jsgf() -> str:
    """The GRID grammar as JSGF: one alternative group per slot, in order."""
    groups = " ".join("( " + " | ".join(words) + " )" for words in SLOTS)
    return f"#JSGF V1.0;\ngrammar grid;\npublic <sentence> = {groups} ;\n"


class GridRecogniser:
    """pocketsphinx constrained to the GRID grammar (closed set).

    A decoder carries state from one utterance to the next even with batch CMN and no noise
    removal: the same generated sentence read "x three", then "x eight" on the next call. Each
    call therefore gets a decoder of its own (0.07 s to build), so a clip's words do not depend
    on what was recognised before it (the order of systems and clips in a benchmark)."""

    model = GRID

    def __init__(self) -> None:
        from pocketsphinx import get_model_path

        folder = Path(get_model_path()) / "en-us"
        self.options = dict(hmm=str(folder / "en-us"), dict=str(folder / "cmudict-en-us.dict"), lm=None,
                            loglevel="FATAL", cmn="batch")
        self._decoder()  # fail here, not at the first clip, if the model files are missing

    def _decoder(self):
        from pocketsphinx import Decoder

        decoder = Decoder(**self.options)
        decoder.add_jsgf_string(GRID, grid_jsgf())
        decoder.activate_search(GRID)
        return decoder

    def __call__(self, audio: np.ndarray) -> str:
        pcm = (np.clip(np.asarray(audio, dtype=np.float64), -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        decoder = self._decoder()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        words = hypothesis.hypstr.split() if hypothesis is not None else []
        return " ".join(word.split("(")[0] for word in words if not word.startswith(("<", "[")))


def is_ctranslate2_whisper(folder: Path) -> bool:
    """Whether `folder` holds a CTranslate2 model (what faster-whisper loads)."""
    return (folder / "model.bin").is_file() and (folder / "config.json").is_file()


class WhisperRecogniser:
    """faster-whisper on a local CTranslate2 Whisper folder: English, greedy, int8 on the CPU."""

    def __init__(self, folder: Path) -> None:
        from faster_whisper import WhisperModel

        self.model = str(folder)
        self.whisper = WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=1)

    def __call__(self, audio: np.ndarray) -> str:
        segments, _ = self.whisper.transcribe(np.asarray(audio, dtype=np.float32), language="en", beam_size=1,
                                              vad_filter=False, condition_on_previous_text=False)
        return " ".join(segment.text.strip() for segment in segments).strip()


def slot_hits(reference: list[str], hypothesis: list[str]) -> dict[str, float] | None:
    """For a GRID sentence (six words, each of its slot): 1.0 per slot whose word was recognised
    where it belongs in the word alignment, else 0.0; None for other references."""
    if len(reference) != len(SLOTS) or any(word not in slot for word, slot in zip(reference, SLOTS)):
        return None
    matched = aligned_matches(reference, hypothesis)
    return {key: float(hit) for key, hit in zip(SLOT_KEYS, matched)}


def aligned_matches(reference: list[str], hypothesis: list[str]) -> list[bool]:
    """For each reference word: whether a minimum-edit alignment pairs it with an equal hypothesis word."""
    rows, cols = len(reference) + 1, len(hypothesis) + 1
    cost = np.zeros((rows, cols), dtype=np.int64)
    cost[:, 0], cost[0, :] = np.arange(rows), np.arange(cols)
    for i in range(1, rows):
        for j in range(1, cols):
            cost[i, j] = min(cost[i - 1, j] + 1, cost[i, j - 1] + 1,
                             cost[i - 1, j - 1] + (reference[i - 1] != hypothesis[j - 1]))
    matched = [False] * len(reference)
    i, j = len(reference), len(hypothesis)
    while i > 0 and j > 0:
        same = reference[i - 1] == hypothesis[j - 1]
        if cost[i, j] == cost[i - 1, j - 1] + (not same):
            matched[i - 1] = same
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return matched
