"""`evaluate_folders`: every metric on every matched file, with the noisy input as a baseline;
`evaluate_transcripts`: the recogniser alone on the references (the best WER to hope for)."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from avdiff.errors import InputError
from avdiff.evaluation.matching import MatchedItem, Matching, audio_files_by_id, match_folders
from avdiff.evaluation.metrics import SIGNAL_METRICS, PairScores, compute_metrics
from avdiff.evaluation.report import EvaluationResult, left_out, metric_reasons
from avdiff.evaluation.signals import DEFAULT_LENGTH_TOLERANCE_MS, LengthMismatchError, MetricError
from avdiff.evaluation.statistics import summarize
from avdiff.evaluation.recognisers import SLOT_KEYS, slot_hits
from avdiff.evaluation.wer import Recogniser as Transcriber
from avdiff.evaluation.wer import load_transcriber, normalize_words, word_error_rate
from avdiff.media import SAMPLE_RATE, load_audio


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _score(reference: np.ndarray, other_path: Path, item: MatchedItem, tolerance_ms: float) -> PairScores:
    other = load_audio(other_path, SAMPLE_RATE)
    try:
        return compute_metrics(reference, other, SAMPLE_RATE, SIGNAL_METRICS, tolerance_ms)
    except LengthMismatchError as error:
        raise InputError(f"{item.id}: {other_path} against {item.reference}: {error}") from error
    except MetricError as error:  # NaN samples and the like make the whole pair unusable
        raise InputError(f"{item.id}: {other_path}: {error}") from error


def _progress(items: list[MatchedItem], show: bool, description: str) -> Iterable[MatchedItem]:
    """`items`, with a tqdm progress bar when `show`."""
    if not show:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=description, unit="file")


def _row(item: MatchedItem, path: Path, scores: PairScores) -> dict[str, Any]:
    row: dict[str, Any] = {"id": item.id, "reference": str(item.reference), "estimate": str(path), **scores.values}
    row["trimmed_ms"] = round(scores.trimmed_ms, 3)
    row["errors"] = "; ".join(f"{key}: {reason}" for key, reason in scores.errors.items())
    return row


def _reference_text(item: MatchedItem, reference: np.ndarray, transcriber: Transcriber) -> tuple[str, str]:
    """The reference transcript: <reference>.txt beside the reference file, else ASR of the reference audio."""
    text_file = item.reference.with_suffix(".txt")
    if text_file.is_file():
        return text_file.read_text(encoding="utf-8").strip(), "file"
    return transcriber(reference), "asr"


def _add_wer(row: dict[str, Any], audio_path: Path, reference_text: str, transcriber: Transcriber) -> None:
    row["transcript"] = transcriber(load_audio(audio_path, SAMPLE_RATE))
    row["reference_text"] = reference_text
    row.update(slot_hits(normalize_words(reference_text), normalize_words(row["transcript"])) or {})
    try:
        row["wer"] = word_error_rate(reference_text, row["transcript"])
    except MetricError as error:
        row["wer"] = math.nan
        row["errors"] = "; ".join(filter(None, [row["errors"], f"wer: {error}"]))


def _corpus_wer(rows: list[dict[str, Any]]) -> float | None:
    from avdiff.evaluation.wer import word_edit_distance

    usable = [row for row in rows if "reference_text" in row and normalize_words(row["reference_text"])]
    words = sum(len(normalize_words(row["reference_text"])) for row in usable)
    if not words:
        return None
    edits = sum(word_edit_distance(normalize_words(row["reference_text"]), normalize_words(row["transcript"]))
                for row in usable)
    return edits / words


def _summary(rows: list[dict[str, Any]], metrics: list[str]) -> dict[str, dict]:
    summary = summarize(rows, metrics)
    if "wer" in summary:
        summary["wer"]["corpus"] = _corpus_wer(rows)  # total word edits / total reference words
    return summary


def _select(items: list[MatchedItem], ids: Collection[str] | None, estimate: Path) -> list[MatchedItem]:
    """The matched items named in `ids` (all of them without `ids`); InputError if none is left."""
    if ids is None:
        return items
    wanted = set(ids)
    items = [item for item in items if item.id in wanted]
    if not items:
        raise InputError(f"none of the {len(wanted)} requested names are among the matched files of {estimate}")
    return items


def _score_item(item: MatchedItem, transcriber: Transcriber | None, tolerance_ms: float
                ) -> tuple[dict[str, Any], dict[str, Any] | None, str | None]:
    """The estimate's row, the noisy input's row (None without one) and where the reference text came from."""
    ref_audio = load_audio(item.reference, SAMPLE_RATE)
    row = _row(item, item.estimate, _score(ref_audio, item.estimate, item, tolerance_ms))
    noisy_row = None
    if item.noisy is not None:
        noisy_row = _row(item, item.noisy, _score(ref_audio, item.noisy, item, tolerance_ms))
        row["si_sdr_i"] = row["si_sdr"] - noisy_row["si_sdr"]
    source = None
    if transcriber is not None:
        reference_text, source = _reference_text(item, ref_audio, transcriber)
        _add_wer(row, item.estimate, reference_text, transcriber)
        if noisy_row is not None:
            _add_wer(noisy_row, item.noisy, reference_text, transcriber)
    return row, noisy_row, source


def _wer_note(transcriber: Transcriber, text_sources: set[str]) -> str:
    """Which model transcribed, and where the reference texts came from."""
    described = {"file": "<reference>.txt", "asr": "ASR of the reference audio"}
    return (f"WER by {transcriber.model}; reference text from "
            + (" and ".join(sorted(described[s] for s in text_sources)) or "nothing"))


def _result(name: str, rows: list[dict[str, Any]], noisy_rows: list[dict[str, Any]] | None, matching: Matching,
            settings: dict[str, Any], notes: list[str], unusable: dict[str, str]) -> EvaluationResult:
    """The estimate's result, with the noisy input's as baseline "noisy" when there is one."""
    metric_keys = list(SIGNAL_METRICS) + ["si_sdr_i", "wer", *SLOT_KEYS]
    result = EvaluationResult(name=name, rows=rows, summary=_summary(rows, metric_keys),
                              unmatched=matching.unmatched(), unusable=unusable, settings=settings, notes=notes)
    if noisy_rows is not None:
        result.baselines["noisy"] = EvaluationResult(name="noisy", rows=noisy_rows,
                                                     summary=_summary(noisy_rows, metric_keys),
                                                     unmatched=matching.unmatched(), unusable=unusable,
                                                     settings=dict(settings))
    return result


def _log_row(item: MatchedItem, system: str, row: dict[str, Any] | None, log: Callable[[str], None]) -> None:
    """Per-metric failures, and values left out of the means without one (SI-SDR +inf), on `log`."""
    if row is None:
        return
    if row["errors"]:
        log(f"evaluate: {item.id} ({system}): {row['errors']}")
    failed = metric_reasons(row)
    for key, reason in left_out(row):
        if key not in failed:
            log(f"evaluate: {item.id} ({system}): {key}: {reason}; left out of the mean")


def evaluate_folders(reference: Path, estimate: Path, noisy: Path | None = None, asr_model: str | None = None, *,
                     name: str | None = None, ids: Collection[str] | None = None,
                     length_tolerance_ms: float = DEFAULT_LENGTH_TOLERANCE_MS, show_progress: bool = False,
                     log: Callable[[str], None] = _stderr) -> EvaluationResult:
    """Score every estimate against its reference (files matched by relative path without extension).

    With `noisy`, the noisy inputs are scored too (baseline "noisy") and the estimate rows gain
    SI-SDRi (estimate SI-SDR minus noisy SI-SDR); only names present in every folder are scored.
    `asr_model` (a local folder or a model id already in the Hugging Face cache) adds WER; without
    one WER is skipped with a one-line note. `ids` restricts the evaluation to those names.
    Unmatched names, per-metric failures and values left out of the means go to `log` (stderr) and
    into the result; an item whose files cannot be scored at all (unreadable, NaN samples, lengths
    that differ by more than `length_tolerance_ms`) is listed in `result.unusable` with its reason
    and the others are scored. Raises InputError for a missing/empty folder, no matches, or when no
    file could be scored.
    """
    reference, estimate = Path(reference), Path(estimate)
    noisy = Path(noisy) if noisy is not None else None
    matching = match_folders(reference, estimate, noisy)
    items = _select(matching.items, ids, estimate)
    for line in matching.describe():
        log(f"evaluate: {line}")
    transcriber, wer_note = load_transcriber(asr_model)
    notes = [wer_note] if wer_note else []
    if wer_note:
        log(wer_note)

    label = name or estimate.name
    rows: list[dict[str, Any]] = []
    noisy_rows: list[dict[str, Any]] = []
    text_sources: set[str] = set()
    unusable: dict[str, str] = {}
    for item in _progress(items, show_progress, f"evaluate {estimate.name}"):
        try:
            row, noisy_row, source = _score_item(item, transcriber, length_tolerance_ms)
        except InputError as error:  # this item's files cannot be scored: list it, score the others
            unusable[item.id] = str(error).splitlines()[0].removeprefix(f"{item.id}: ")
            log(f"evaluate: not evaluated: {item.id}: {unusable[item.id]}")
            continue
        _log_row(item, "noisy", noisy_row, log)
        _log_row(item, label, row, log)
        rows.append(row)
        if noisy_row is not None:
            noisy_rows.append(noisy_row)
        if source is not None:
            text_sources.add(source)

    if not rows:
        raise InputError(f"none of the {len(items)} matched files could be scored; "
                         f"{next(iter(unusable))}: {next(iter(unusable.values()))}")
    if transcriber is not None:
        notes.append(_wer_note(transcriber, text_sources))
    settings = {"reference": str(reference), "estimate": str(estimate), "noisy": str(noisy) if noisy else None,
                "asr_model": asr_model, "sample_rate": SAMPLE_RATE, "length_tolerance_ms": length_tolerance_ms,
                "pesq_nb_rate": 8000, "files_evaluated": len(rows)}
    return _result(label, rows, noisy_rows if noisy is not None else None, matching, settings, notes, unusable)


def evaluate_transcripts(reference: Path, asr_model: str | None, *, name: str = "reference",
                         log: Callable[[str], None] = _stderr) -> EvaluationResult:
    """WER (and GRID slot accuracy) of the recogniser on the reference audio itself, against each
    file's <reference>.txt: the best an estimate can hope for.

    No signal metrics: the reference scored against itself says nothing (SI-SDR +inf for every
    file). A file without a .txt is listed in `result.unusable` (ASR of itself would score 0);
    without a recogniser, or without any transcript, the summary is empty and a note says why.
    """
    reference = Path(reference)
    files = audio_files_by_id(reference, "reference")
    transcriber, wer_note = load_transcriber(asr_model)
    settings = {"reference": str(reference), "asr_model": asr_model, "sample_rate": SAMPLE_RATE}
    if transcriber is None:
        log(wer_note)
        return EvaluationResult(name=name, rows=[], summary={}, settings=settings, notes=[wer_note])
    rows: list[dict[str, Any]] = []
    unusable: dict[str, str] = {}
    for item_id, path in files.items():
        text_file = path.with_suffix(".txt")
        if not text_file.is_file():
            unusable[item_id] = f"no {text_file.name} beside it to score the recogniser against"
            log(f"evaluate: not evaluated: {item_id}: {unusable[item_id]}")
            continue
        row: dict[str, Any] = {"id": item_id, "reference": str(path), "estimate": str(path), "errors": ""}
        _add_wer(row, path, text_file.read_text(encoding="utf-8").strip(), transcriber)
        rows.append(row)
    notes = [_wer_note(transcriber, {"file"} if rows else set())]
    return EvaluationResult(name=name, rows=rows, summary=_summary(rows, ["wer", *SLOT_KEYS]) if rows else {},
                            unusable=unusable, settings={**settings, "files_evaluated": len(rows)}, notes=notes)
