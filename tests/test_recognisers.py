"""Offline recognisers for WER: the GRID grammar (pocketsphinx) and Whisper (faster-whisper)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avdiff.evaluation.recognisers import GridRecogniser, aligned_matches, grid_jsgf, slot_hits
from avdiff.evaluation.wer import load_transcriber, word_error_rate
from avdiff.grid_grammar import SLOTS

REPO_ROOT = Path(__file__).resolve().parents[1]
WHISPER = Path(os.environ.get("AVDIFF_WHISPER", REPO_ROOT.parent / "whisper-base"))


@pytest.fixture(scope="module")
def corpus_speech():
    """Four synthetic GRID utterances by four of the corpus's own speakers: (sentence text, 16 kHz audio).

    All four commands, colours and adverbs; letters are the grammar's hardest slot (g/d, d/b are
    confused now and then: about 3-5 % WER over many sentences, BENCHMARKS.md)."""
    from avdiff.synth.grammar import Sentence
    from avdiff.synth.speakers import make_speakers
    from avdiff.synth.utterance import make_utterance

    speakers = make_speakers(0, 4)
    chosen = [(17, 0, 0), (45678, 1, 5), (31337, 2, 2), (9999, 3, 7)]  # (sentence, speaker, seed)
    sentences = [(Sentence.from_index(index), speakers[who], seed) for index, who, seed in chosen]
    return [(s.text, make_utterance(s, speaker, seed=seed, size=16).audio) for s, speaker, seed in sentences]


def test_the_grid_grammar_recognises_corpus_speech_and_not_noise(corpus_speech):
    recogniser, note = load_transcriber("grid")
    assert note == "" and isinstance(recogniser, GridRecogniser)
    for text, audio in corpus_speech:
        assert word_error_rate(text, recogniser(audio)) == 0.0, text
    noise = np.random.default_rng(0).standard_normal(48000).astype(np.float32) * 0.1
    errors = [word_error_rate(text, recogniser(noise)) for text, _ in corpus_speech]
    assert np.mean(errors) >= 0.5  # noise matches a fixed guess at best by chance


def test_the_jsgf_holds_every_grid_word_once_per_slot():
    grammar = grid_jsgf()
    for slot in SLOTS:
        assert "( " + " | ".join(slot) + " )" in grammar


def test_slot_accuracy_follows_the_word_alignment():
    reference = "bin blue at f two now".split()
    assert slot_hits(reference, reference) == {f"slot_{n}": 1.0 for n in
                                                ("command", "colour", "preposition", "letter", "digit", "adverb")}
    hits = slot_hits(reference, "bin at f three now".split())  # colour deleted, digit substituted
    assert [hits[k] for k in ("slot_command", "slot_colour", "slot_preposition", "slot_letter", "slot_digit",
                              "slot_adverb")] == [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    assert slot_hits("hello world".split(), "hello".split()) is None  # not a GRID sentence
    assert aligned_matches(["a", "b"], ["x", "a", "b"]) == [True, True]


def test_whisper_folder_transcribes_real_speech():
    if not (WHISPER / "model.bin").is_file():
        pytest.skip(f"no Whisper model at {WHISPER}: run ../shared/tools/whisper-base.sh (or set AVDIFF_WHISPER)")
    speech = sorted((REPO_ROOT.parent / "shared" / "data" / "speech" / "speechocean762-train").rglob("*.flac"))
    if not speech:
        pytest.skip("no real speech in ../shared/data/speech")
    table = dict(line.split("\t", 1) for line in (speech[0].parents[1] / "transcripts.tsv").read_text().splitlines())
    audio, rate = sf.read(speech[0], dtype="float32")
    recogniser, note = load_transcriber(str(WHISPER))
    assert note == "" and recogniser is not None and rate == 16000
    reference = table[speech[0].relative_to(speech[0].parents[1]).as_posix()]
    assert word_error_rate(reference, recogniser(audio)) <= 0.5


def test_missing_recogniser_packages_only_skip_wer(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def refuse_pocketsphinx(name, *args, **kwargs):
        if name.startswith("pocketsphinx"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse_pocketsphinx)
    recogniser, note = load_transcriber("grid")
    assert recogniser is None and "needs pocketsphinx" in note


def test_avdiff_evaluate_asr_grid_reports_wer_and_slot_accuracy(corpus_speech, tmp_path):
    import json

    from avdiff.cli import main

    for folder in ("ref", "est", "noisy"):
        (tmp_path / folder).mkdir()
    rng = np.random.default_rng(0)
    for number, (text, audio) in enumerate(corpus_speech):
        sf.write(tmp_path / "ref" / f"u{number}.wav", audio, 16000)
        (tmp_path / "ref" / f"u{number}.txt").write_text(text)
        sf.write(tmp_path / "est" / f"u{number}.wav", audio, 16000)
        noise = rng.standard_normal(len(audio)).astype(np.float32) * 4 * float(np.abs(audio).max())
        sf.write(tmp_path / "noisy" / f"u{number}.wav", np.clip(audio + noise, -1, 1), 16000)
    output = tmp_path / "metrics.json"
    assert main(["evaluate", "--reference", str(tmp_path / "ref"), "--estimate", str(tmp_path / "est"), "--noisy",
                 str(tmp_path / "noisy"), "--asr", "grid", "--output", str(output), "--no-progress"]) == 0
    systems = json.loads(output.read_text())["systems"]
    assert systems["est"]["wer"]["mean"] == 0.0 and systems["est"]["slot_letter"]["mean"] == 1.0
    assert systems["noisy"]["wer"]["mean"] > 0.3 and systems["noisy"]["slot_letter"]["mean"] < 1.0
    table = output.with_suffix(".md").read_text()
    assert "| WER ↓ |" in table and "letter acc. ↑" in table


def test_a_clip_reads_the_same_whatever_was_recognised_before(corpus_speech):
    """A generated sentence that a reused pocketsphinx decoder read differently on its second call
    ("x three", then "x eight"): every call must read it alike, before and after other speech."""
    audio, rate = sf.read(REPO_ROOT / "tests" / "data" / "generated_grid_utterance.flac", dtype="float32")
    assert rate == 16000
    recogniser = GridRecogniser()
    first = recogniser(audio)
    after_others = [recogniser(other) for _, other in corpus_speech[:2]] and recogniser(audio)
    assert [first, recogniser(audio), after_others] == [first] * 3
    assert first.split()[:2] == ["lay", "red"]
