"""Word error rate through an offline recogniser: the GRID grammar (`grid`, pocketsphinx), a
CTranslate2 Whisper folder (faster-whisper), or a transformers ASR model; never downloaded."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from avdiff.evaluation.recognisers import GRID, GridRecogniser, WhisperRecogniser, is_ctranslate2_whisper
from avdiff.evaluation.signals import MetricError
from avdiff.media import SAMPLE_RATE

_PUNCTUATION = re.compile(r"[^\w\s']")


def normalize_words(text: str) -> list[str]:
    """Lower-case words with punctuation (except apostrophes) removed."""
    return _PUNCTUATION.sub(" ", text.lower()).split()


def word_edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Minimum substitutions + deletions + insertions turning `reference` into `hypothesis` (Levenshtein)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, start=1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp_word in enumerate(hypothesis, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
        previous = current
    return previous[-1]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word edits / reference words, after normalize_words; MetricError for an empty reference."""
    ref_words = normalize_words(reference)
    if not ref_words:
        raise MetricError("WER is undefined: the reference transcript has no words")
    return word_edit_distance(ref_words, normalize_words(hypothesis)) / len(ref_words)


@dataclass
class Transcriber:
    """A loaded transformers ASR pipeline: call it on 16 kHz mono float audio to get text."""

    model: str
    pipeline: Any

    def __call__(self, audio: np.ndarray) -> str:
        output = self.pipeline({"raw": np.asarray(audio, dtype=np.float32), "sampling_rate": SAMPLE_RATE})
        return str(output.get("text", "") if isinstance(output, dict) else output).strip()


def _resolve_offline(model: str) -> str | None:
    """A local folder for `model`: the path itself, or its snapshot in the Hugging Face cache; None if absent."""
    if Path(model).expanduser().is_dir():
        return str(Path(model).expanduser())
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(model, local_files_only=True)
    except Exception:  # LocalEntryNotFoundError, invalid repo id, ...
        return None


class Recogniser(Protocol):
    """What WER needs: a name and 16 kHz mono float audio -> text."""

    model: str

    def __call__(self, audio: np.ndarray) -> str: ...


def load_transcriber(model: str | None) -> tuple[Recogniser | None, str]:
    """Load `model` without touching the network: `grid` (the GRID grammar), a CTranslate2 Whisper
    folder, or a transformers model (local folder or cached model id).

    Returns (recogniser, "") or (None, a one-line reason WER is skipped); never raises.
    """
    if not model:
        return None, "WER skipped: no ASR model given (pass --asr grid, a Whisper folder or a cached model id)"
    if model == GRID or is_ctranslate2_whisper(Path(model).expanduser()):
        return _load_offline_recogniser(model)
    try:
        import transformers
    except ImportError:
        return None, f"WER skipped: the ASR model {model!r} needs transformers, which is not installed"
    local = _resolve_offline(model)
    if local is None:
        return None, (f"WER skipped: ASR model {model!r} is neither a local folder nor in the Hugging Face "
                      "cache, and models are never downloaded here")
    try:
        asr = transformers.pipeline("automatic-speech-recognition", model=local, device="cpu")
    except Exception as error:  # any loading failure must only skip WER
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return None, f"WER skipped: cannot load ASR model {model!r}: {reason}"
    return Transcriber(model, asr), ""


def _load_offline_recogniser(model: str) -> tuple[Recogniser | None, str]:
    """The GRID grammar recogniser or faster-whisper on a CTranslate2 folder."""
    package = "pocketsphinx" if model == GRID else "faster-whisper"
    try:
        return (GridRecogniser() if model == GRID else WhisperRecogniser(Path(model).expanduser())), ""
    except ImportError:
        return None, f"WER skipped: --asr {model} needs {package} (pip install 'avdiff[asr]')"
    except Exception as error:  # any loading failure must only skip WER
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return None, f"WER skipped: cannot load ASR model {model!r}: {reason}"
