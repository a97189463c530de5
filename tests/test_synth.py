"""`avdiff synth`: grammar, espeak-ng binding, visemes, renderer, audio-video alignment, corpus files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("espeakng_loader", reason="avdiff synth needs pip install 'avdiff[synth]'")

from avdiff.cli import main  # noqa: E402
from avdiff.data.manifest import read_manifest  # noqa: E402
from avdiff.errors import InputError  # noqa: E402
from avdiff.grid_grammar import LETTERS, NUM_SENTENCES, SLOTS, words_of_code  # noqa: E402
from avdiff.timegrid import SAMPLE_RATE, SAMPLES_PER_FRAME  # noqa: E402
from avdiff.synth.corpus import SynthSettings, plan_corpus  # noqa: E402
from avdiff.synth.espeak import VoiceSettings, synthesize  # noqa: E402
from avdiff.synth.grammar import Sentence  # noqa: E402
from avdiff.synth.render import Appearance, Nuisance, render_mouth  # noqa: E402
from avdiff.synth.speakers import make_speakers  # noqa: E402
from avdiff.synth.utterance import make_utterance  # noqa: E402
from avdiff.synth.visemes import (  # noqa: E402
    P, VISEMES, frame_trajectories, segments_from_phonemes, trajectories, viseme_sequence,
)

# -- grammar ------------------------------------------------------------------------------------


def test_grammar_index_round_trip_and_codes():
    assert NUM_SENTENCES == 64000
    for index in (0, 1, 12345, NUM_SENTENCES - 1):
        sentence = Sentence.from_index(index)
        assert sentence.index == index
        assert Sentence.from_text(sentence.text) == sentence
    bbaf2n = Sentence.from_text("bin blue at f two now")
    assert bbaf2n.code == "bbaf2n"
    zero = Sentence.from_text("bin blue in z zero now")
    assert zero.code == "bbizzn"  # GRID writes the digit zero as "z"
    for sentence in (bbaf2n, zero, Sentence.from_index(NUM_SENTENCES - 1)):
        assert words_of_code(sentence.code) == sentence.words  # the code read back the way prepare reads it
    assert Sentence.from_text("set red by a one again").spoken_text == "set red by eh one again"
    with pytest.raises(ValueError):
        Sentence.from_text("bin blue at w two now")  # no "w" in GRID's letter slot


# -- espeak-ng ----------------------------------------------------------------------------------


def test_espeak_phoneme_events_cover_the_words_and_do_not_depend_on_history():
    voice = VoiceSettings(variant="m3", rate=150, word_gap=3)
    first = synthesize("bin blue at F two now", voice, seed=1)
    synthesize("lay green with Q nine soon", VoiceSettings(variant="f2", pitch=70), seed=2)
    again = synthesize("bin blue at F two now", voice, seed=1)
    assert first.sample_rate == 22050
    assert np.array_equal(first.samples, again.samples) and first.phonemes == again.phonemes
    spans = [(p.start, p.end) for p in first.phonemes]
    assert all(a < b for a, b in spans) and all(b == c for (_, b), (c, _) in zip(spans, spans[1:]))
    assert spans[-1][1] == first.samples.size
    assert sorted({p.word for p in first.phonemes if p.word >= 0}) == list(range(6))
    names = [p.name.lstrip("'") for p in first.phonemes]
    assert names[:3] == ["b", "I", "n"] and "f" in names  # "bin", and the letter F = "eff"
    # the sound is where the phonemes say: silence before the first, energy inside the vowels
    vowel = next(p for p in first.phonemes if p.name == "'I")
    assert np.abs(first.samples[vowel.start:vowel.end]).max() > 0.05


def test_unknown_voice_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(InputError, match="unknown"):
        synthesize("bin", VoiceSettings(variant="nosuchvoice"))
    assert main(["synth", "--output", str(tmp_path / "c"), "--num-utterances", "2", "--voices", "m1,nosuchvoice"]) == 2
    err = capsys.readouterr().err
    assert "unknown voice 'nosuchvoice'" in err and err.count("\n") == 1


# -- visemes ------------------------------------------------------------------------------------


def test_every_phoneme_of_the_grammar_has_an_explicit_viseme():
    voice = VoiceSettings(variant="m1")
    seen = set()
    for i, letter in enumerate(LETTERS):  # every letter, and every other word at least once
        words = [slot[i % len(slot)] for slot in SLOTS]
        words[3] = letter
        for phoneme in synthesize(Sentence.from_text(" ".join(words)).spoken_text, voice).phonemes:
            seen.add(phoneme.name)
            viseme_sequence(phoneme.name)  # KeyError if only the fallback knew it
    assert {"'eI", "b", "f", "T", "w", "'u:"} <= seen


def test_coarticulation_closes_lips_for_bilabials_and_rounds_ahead_of_u():
    seg = segments_from_phonemes([("_", 0.0, 0.2), ("b", 0.2, 0.26), ("'A:", 0.26, 0.46), ("t", 0.46, 0.52),
                                  ("'u:", 0.52, 0.72), ("_", 0.72, 1.0)])
    values = trajectories(seg, np.array([0.23, 0.36, 0.49, 0.62]))
    b, a, t, u = values
    assert b[P["open"]] < 0.1 and b[P["closure"]] > 0.8
    assert a[P["open"]] > 0.7
    assert u[P["round"]] > 0.8
    assert t[P["round"]] > 0.3  # the /t/ of "two" is already rounded (anticipation)
    # a video frame averages over its exposure: frame 5 (0.2-0.24 s) is the closure of /b/
    frames = frame_trajectories(seg, 25, 25)
    assert frames[5, P["open"]] < 0.1 and frames[9, P["open"]] > 0.6


def _render_targets(names, appearance=Appearance()):
    params = np.array([VISEMES[n].target for n in names], np.float32)
    T = len(names)
    still = Nuisance(np.zeros(T), np.zeros(T), np.zeros(T), np.ones(T), np.ones(T), np.zeros(T))
    return render_mouth(params, appearance, still, np.random.default_rng(0), noise_std=0.0)


def _dark_box(frame, level):
    ys, xs = np.nonzero(frame[20:80, 10:78] < level)
    return (0, 0, 0) if ys.size == 0 else (ys.size, ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)


def test_visemes_are_visibly_distinct():
    names = ["bilabial", "labiodental", "A", "i", "u", "dental"]
    frames = dict(zip(names, _render_targets(names)))
    dark_level = 0.25 * 255
    area = {n: _dark_box(frames[n], dark_level)[0] for n in names}
    assert area["bilabial"] < 0.05 * area["A"]  # closed lips: no mouth cavity
    assert area["labiodental"] < 0.15 * area["A"]
    _, h_i, w_i = _dark_box(frames["i"], dark_level)
    _, h_u, w_u = _dark_box(frames["u"], dark_level)
    assert w_u < 0.7 * w_i and h_u / w_u > h_i / w_i  # rounded: narrow and round; spread: wide and flat
    bright = lambda f: int((f[20:80, 10:78] > 0.8 * 255).sum())  # noqa: E731
    assert bright(frames["labiodental"]) > 20  # upper teeth on the lower lip
    assert bright(frames["bilabial"]) == 0
    assert not np.array_equal(frames["dental"], frames["i"])


# -- one utterance: shapes and audio-video alignment ----------------------------------------------


def _mouth_opening(video: np.ndarray) -> np.ndarray:
    """Fraction of dark pixels in the mouth area (darker than half the frame's median)."""
    video = video.astype(np.float32)
    median = np.median(video.reshape(len(video), -1), axis=1)[:, None, None]
    return (video[:, 24:72, 14:74] < 0.5 * median).mean(axis=(1, 2))


def _energy_db(audio: np.ndarray) -> np.ndarray:
    return 10 * np.log10(np.mean(audio.reshape(-1, SAMPLES_PER_FRAME) ** 2, axis=1) + 1e-10)


def _cross_correlation(pairs, max_lag=5):
    """Pooled Pearson correlation of energy(t + lag) with opening(t), lag in frames."""
    out = {}
    for lag in range(-max_lag, max_lag + 1):
        a = np.concatenate([e[max(0, lag):len(e) + min(0, lag)] for e, _ in pairs])
        b = np.concatenate([m[max(0, -lag):len(m) + min(0, -lag)] for _, m in pairs])
        out[lag] = float(np.corrcoef(a, b)[0, 1])
    return out


@pytest.fixture(scope="module")
def utterances():
    speakers = make_speakers(11, 6)
    return [make_utterance(Sentence.from_index(9973 * k + 5), speakers[k], seed=k) for k in range(6)]


def test_utterance_is_on_the_time_grid(utterances):
    for utterance in utterances:
        assert utterance.video.dtype == np.uint8 and utterance.video.shape[1:] == (88, 88)
        assert utterance.audio.dtype == np.float32
        assert utterance.audio.size == utterance.num_frames * SAMPLES_PER_FRAME
        assert len(utterance.words) == 6
        starts = [s for _, s, _ in utterance.words]
        assert starts == sorted(starts) and starts[0] >= 0.2 and utterance.words[-1][2] <= utterance.num_frames / 25 - 0.2
        # silence before the first word and after the last; speech in between
        energy = _energy_db(utterance.audio)
        first, last = int(starts[0] * 25), int(utterance.words[-1][2] * 25)
        assert energy[: first - 1].max() < -55 and energy[first:last].max() > -30


def test_mouth_opening_follows_audio_energy_at_lag_zero(utterances):
    pairs = [(_energy_db(u.audio), _mouth_opening(u.video)) for u in utterances]
    corr = _cross_correlation(pairs)
    best = max(corr, key=corr.get)
    assert abs(best) <= 1, corr
    assert corr[0] > 0.4 and corr[0] > corr[3] + 0.15 and corr[0] > corr[-3] + 0.15, corr
    # a video shifted by 3 frames moves the peak by 3 frames: the measure sees misalignment
    shifted = [(e, np.concatenate([np.full(3, m[0]), m[:-3]])) for e, m in pairs]
    corr_shifted = _cross_correlation(shifted)
    assert abs(max(corr_shifted, key=corr_shifted.get) - (-3)) <= 1, corr_shifted
    # and the video of another utterance does not match
    unrelated = [(pairs[i][0][:n], pairs[(i + 1) % len(pairs)][1][:n])
                 for i in range(len(pairs)) for n in [min(len(pairs[i][0]), len(pairs[(i + 1) % len(pairs)][1]))]]
    assert max(_cross_correlation(unrelated).values()) < corr[0] - 0.2


# -- the corpus ---------------------------------------------------------------------------------


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth") / "data"
    assert main(["synth", "--output", str(folder), "--num-utterances", "6", "--seed", "5", "--no-progress",
                 "--valid-fraction", "0.2", "--test-fraction", "0.2"]) == 0
    return folder


def test_corpus_layout_and_splits(corpus):
    items = read_manifest(corpus / "manifest.jsonl")
    assert len(items) == 6
    splits = {s: read_manifest(corpus / f"{s}.jsonl") for s in ("train", "valid", "test")}
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [4, 1, 1]  # round(6 * 0.2) = 1
    assert sorted(i["id"] for s in splits.values() for i in s) == sorted(i["id"] for i in items)
    texts = {s: {i["text"] for i in splits[s]} for s in splits}
    assert not (texts["train"] & texts["valid"] or texts["train"] & texts["test"] or texts["valid"] & texts["test"])
    alignments = [json.loads(line) for line in (corpus / "alignments.jsonl").read_text().splitlines()]
    assert [a["id"] for a in alignments] == [i["id"] for i in items]
    for item, alignment in zip(items, alignments):
        audio, rate = sf.read(corpus / item["audio"], dtype="float32")
        video = np.load(corpus / item["video"])
        assert rate == SAMPLE_RATE and audio.ndim == 1 and audio.size == item["num_frames"] * SAMPLES_PER_FRAME
        assert video.dtype == np.uint8 and video.shape == (item["num_frames"], 88, 88)
        assert item["duration"] == pytest.approx(item["num_frames"] / 25)
        assert " ".join(w for w, _, _ in alignment["words"]) == item["text"]
        assert Sentence.from_text(item["text"]).code in item["id"] and item["speaker"] in item["id"]
    speakers = json.loads((corpus / "speakers.json").read_text())
    assert len(speakers) == 8 and len({json.dumps(s["voice"]) for s in speakers}) == 8


def test_same_seed_same_bytes_with_two_workers_and_other_seed_differs(corpus, tmp_path):
    again = tmp_path / "again"
    assert main(["synth", "--output", str(again), "--num-utterances", "6", "--seed", "5", "--workers", "2",
                 "--no-progress", "--valid-fraction", "0.2", "--test-fraction", "0.2"]) == 0
    assert _files(again) == _files(corpus)
    other = tmp_path / "other"
    assert main(["synth", "--output", str(other), "--num-utterances", "6", "--seed", "6", "--no-progress",
                 "--valid-fraction", "0.2", "--test-fraction", "0.2"]) == 0
    a, b = _files(corpus), _files(other)
    assert a["manifest.jsonl"] != b["manifest.jsonl"]
    assert not set(k for k in a if k.startswith("items/")) & set(k for k in b if k.startswith("items/"))


def test_disjoint_speakers_and_sentence_splits_in_plans():
    speakers, plans = plan_corpus(SynthSettings(num_utterances=200, seed=1, speakers=10, disjoint_speakers=True))
    by_split = {s: {p.speaker for p in plans if p.split == s} for s in ("train", "valid", "test")}
    assert by_split["train"] and by_split["valid"] and by_split["test"]
    assert not (by_split["train"] & by_split["valid"] or by_split["train"] & by_split["test"]
                or by_split["valid"] & by_split["test"])
    _, shared = plan_corpus(SynthSettings(num_utterances=200, seed=1, speakers=10))
    counts = np.bincount([p.speaker for p in shared if p.split == "train"], minlength=10)
    assert counts.max() - counts.min() <= 1  # speakers take turns
    assert len({p.sentence for p in shared}) == 200


def test_more_utterances_than_sentences_keep_splits_disjoint():
    _, plans = plan_corpus(SynthSettings(num_utterances=NUM_SENTENCES + 500, seed=2, speakers=3))
    split_of: dict[int, str] = {}
    for plan in plans:
        assert split_of.setdefault(plan.sentence, plan.split) == plan.split
    assert len(split_of) == NUM_SENTENCES


@pytest.mark.parametrize("args, message", [
    (["--num-utterances", "0"], "--num-utterances must be >= 1"),
    (["--num-utterances", "-3"], "--num-utterances must be >= 1"),
    (["--num-utterances", "2", "--speakers", "0"], "--speakers must be >= 1"),
    (["--num-utterances", "2", "--workers", "0"], "--workers must be >= 1"),
    (["--num-utterances", "2", "--speakers", "2", "--disjoint-speakers"], "needs at least 3 speakers"),
    (["--num-utterances", "2", "--valid-fraction", "0.6", "--test-fraction", "0.5"], "sum to less than 1"),
])
def test_bad_arguments_fail_with_one_clear_line(tmp_path, capsys, args, message):
    assert main(["synth", "--output", str(tmp_path / "c"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("avdiff synth: error:") and err.count("\n") == 1
    assert not (tmp_path / "c").exists()


def test_existing_folder_needs_overwrite_and_overwrite_only_replaces_a_synth_corpus(tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    assert main(["synth", "--output", str(folder), "--num-utterances", "1", "--no-progress"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["synth", "--output", str(folder), "--num-utterances", "1", "--overwrite", "--no-progress"]) == 2
    assert "refusing to delete" in capsys.readouterr().err and (folder / "notes.txt").read_text() == "mine"
    (folder / "notes.txt").unlink()
    assert main(["synth", "--output", str(folder), "--num-utterances", "3", "--no-progress"]) == 0
    assert main(["synth", "--output", str(folder), "--num-utterances", "1", "--overwrite", "--no-progress"]) == 0
    assert len(read_manifest(folder / "manifest.jsonl")) == 1 and len(list((folder / "items").iterdir())) == 2
