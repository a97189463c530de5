"""A whole synthetic corpus: the plan (sentences, speakers, splits, seeds), parallel rendering, files.

Layout (the same as `avdiff prepare` writes, plus the splits and the synthesis records):
    DATA/manifest.jsonl                every utterance, sorted by id
    DATA/train.jsonl, valid.jsonl, test.jsonl
    DATA/items/<id>.wav                16 kHz mono PCM-16, exactly num_frames * 640 samples
    DATA/items/<id>.npy                uint8 (num_frames, S, S) mouth frames at 25 fps
    DATA/alignments.jsonl              word and phoneme times (seconds) of each utterance
    DATA/speakers.json                 each speaker's voice settings and appearance
    DATA/synth.json                    the settings and versions that made the corpus

Determinism: the plan is a function of the settings alone; utterance i is rendered from its
own seed (SeedSequence([seed, i])) and espeak-ng is loaded afresh for each utterance, so the
files are byte-identical for a seed whatever the number of workers or the order they finish.
Splits have disjoint sentences (a sentence is only repeated when more than 64,000 utterances
are asked for, and then within its split); with `disjoint_speakers` the validation and test
speakers are also unseen in training.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from avdiff import __version__
from avdiff.data.manifest import write_manifest
from avdiff.errors import AVDiffError, InputError
from avdiff.grid_grammar import NUM_SENTENCES
from avdiff.timegrid import SAMPLE_RATE, VIDEO_FPS
from avdiff.synth.grammar import Sentence, sentence_order
from avdiff.synth.speakers import DEFAULT_VARIANTS, Speaker, check_variants, make_speakers
from avdiff.synth.utterance import make_utterance

ITEMS_DIR = "items"
SPLITS = ("train", "valid", "test")
SETTINGS_NAME = "synth.json"
OUTPUT_NAMES = ("manifest.jsonl", *(f"{s}.jsonl" for s in SPLITS), "alignments.jsonl", "speakers.json", SETTINGS_NAME)


@dataclass(frozen=True)
class SynthSettings:
    """Everything that determines the corpus (saved as DATA/synth.json)."""

    num_utterances: int
    seed: int = 0
    speakers: int = 8
    variants: tuple[str, ...] = DEFAULT_VARIANTS
    valid_fraction: float = 0.05
    test_fraction: float = 0.05
    disjoint_speakers: bool = False
    size: int = 88

    def __post_init__(self) -> None:
        if self.num_utterances < 1:
            raise InputError(f"--num-utterances must be >= 1, got {self.num_utterances}")
        if self.speakers < 1:
            raise InputError(f"--speakers must be >= 1, got {self.speakers}")
        if not (0 <= self.valid_fraction < 1 and 0 <= self.test_fraction < 1
                and self.valid_fraction + self.test_fraction < 1):
            raise InputError("--valid-fraction and --test-fraction must be in [0, 1) and sum to less than 1")
        if self.size < 16:
            raise InputError(f"--size must be >= 16 pixels, got {self.size}")
        if not 0 <= self.seed < 2**63:
            raise InputError(f"--seed must be in [0, 2**63), got {self.seed}")
        held_out = sum(f > 0 for f in (self.valid_fraction, self.test_fraction))
        if self.disjoint_speakers and self.speakers < held_out + 1:
            raise InputError(f"--disjoint-speakers needs at least {held_out + 1} speakers (one for training and "
                             f"one per held-out split), got --speakers {self.speakers}")
        check_variants(self.variants)


@dataclass(frozen=True)
class UtterancePlan:
    id: str
    index: int
    sentence: int  # index into the GRID grammar
    speaker: int  # index into the corpus's speakers
    split: str
    seed: int


def _split_sizes(count: int, valid_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """(train, valid, test) counts: each held-out split gets >= 1 when its fraction > 0 and count >= 3."""
    def held(fraction: float) -> int:
        if fraction <= 0:
            return 0
        return max(1, int(round(count * fraction))) if count >= 3 else 0
    valid, test = held(valid_fraction), held(test_fraction)
    return count - valid - test, valid, test


def _speaker_groups(settings: SynthSettings) -> dict[str, list[int]]:
    everyone = list(range(settings.speakers))
    if not settings.disjoint_speakers:
        return {split: everyone for split in SPLITS}
    _, valid, test = _split_sizes(settings.speakers, settings.valid_fraction, settings.test_fraction)
    valid = max(valid, 1 if settings.valid_fraction > 0 else 0)
    test = max(test, 1 if settings.test_fraction > 0 else 0)
    train = settings.speakers - valid - test
    return {"train": everyone[:train], "valid": everyone[train:train + valid], "test": everyone[train + valid:]}


def plan_corpus(settings: SynthSettings) -> tuple[list[Speaker], list[UtterancePlan]]:
    """The speakers and every utterance's sentence, speaker, split and seed (no synthesis yet)."""
    speakers = make_speakers(settings.seed, settings.speakers, settings.variants)
    rng = np.random.default_rng([settings.seed, 1])
    order = sentence_order(rng)
    unique = min(settings.num_utterances, NUM_SENTENCES)
    n_train, n_valid, _ = _split_sizes(unique, settings.valid_fraction, settings.test_fraction)
    groups = _speaker_groups(settings)
    cursors = {split: 0 for split in SPLITS}
    rotations = {split: rng.permutation(len(groups[split])) for split in SPLITS if groups[split]}
    seeds = np.random.SeedSequence(settings.seed).spawn(settings.num_utterances)
    plans = []
    for i in range(settings.num_utterances):
        position = i % unique
        split = "train" if position < n_train else "valid" if position < n_train + n_valid else "test"
        group = groups[split]
        if not group:
            raise InputError(f"no speaker left for the {split} split")
        # speakers in turn, in a fresh random order each round, so every speaker gets the same share
        turn, within = divmod(cursors[split], len(group))
        if within == 0 and turn > 0:
            rotations[split] = rng.permutation(len(group))
        speaker = group[int(rotations[split][within])]
        cursors[split] += 1
        sentence = Sentence.from_index(int(order[position]))
        plans.append(UtterancePlan(
            id=f"u{i:06d}_{speakers[speaker].id}_{sentence.code}", index=i, sentence=sentence.index,
            speaker=speaker, split=split, seed=int(seeds[i].generate_state(1, np.uint64)[0])))
    return speakers, plans


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    write(tmp)
    os.replace(tmp, path)


def render_item(plan: UtterancePlan, speaker: Speaker, output_dir: Path, size: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Synthesise one utterance, write its .wav and .npy; returns (manifest entry, alignment)."""
    sentence = Sentence.from_index(plan.sentence)
    utterance = make_utterance(sentence, speaker, plan.seed, size=size)
    audio_rel, video_rel = f"{ITEMS_DIR}/{plan.id}.wav", f"{ITEMS_DIR}/{plan.id}.npy"
    _atomic(output_dir / audio_rel, lambda p: sf.write(str(p), np.clip(utterance.audio, -1.0, 32767 / 32768),
                                                         SAMPLE_RATE, subtype="PCM_16", format="WAV"))
    _atomic(output_dir / video_rel, lambda p: np.save(p, utterance.video, allow_pickle=False))
    entry = {"id": plan.id, "audio": audio_rel, "video": video_rel, "num_frames": utterance.num_frames,
             "duration": round(utterance.num_frames / VIDEO_FPS, 6), "speaker": speaker.id, "text": sentence.text}
    alignment = {"id": plan.id, "split": plan.split,
                 "words": [[w, round(s, 5), round(e, 5)] for w, s, e in utterance.words],
                 "phonemes": [[p, round(s, 5), round(e, 5)] for p, s, e in utterance.phonemes]}
    return entry, alignment


# -- worker processes ---------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(speakers: list[Speaker], output_dir: Path, size: int) -> None:
    import torch

    torch.set_num_threads(1)  # resampling only; one process per core does the parallelism
    _WORKER.update(speakers=speakers, output_dir=output_dir, size=size)


def _work(plan: UtterancePlan) -> tuple[dict[str, Any], dict[str, Any]]:
    return render_item(plan, _WORKER["speakers"][plan.speaker], _WORKER["output_dir"], _WORKER["size"])


def _results(plans: list[UtterancePlan], speakers: list[Speaker], output_dir: Path, size: int,
             workers: int) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    if workers <= 1:
        for plan in plans:
            yield render_item(plan, speakers[plan.speaker], output_dir, size)
        return
    context = multiprocessing.get_context("spawn")  # no fork after torch threads exist
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                             initargs=(speakers, output_dir, size)) as pool:
        yield from pool.map(_work, plans, chunksize=max(1, min(16, len(plans) // (4 * workers))))


@dataclass
class SynthReport:
    output_dir: Path
    counts: dict[str, int] = field(default_factory=dict)
    hours: float = 0.0


def prepare_output(output_dir: Path, overwrite: bool) -> None:
    """Refuse to write into a non-empty folder unless --overwrite (and then only over a synth corpus)."""
    if output_dir.exists() and not output_dir.is_dir():
        raise InputError(f"{output_dir}: exists and is not a folder")
    if output_dir.is_dir() and any(output_dir.iterdir()):
        if not overwrite:
            raise InputError(f"{output_dir}: folder exists and is not empty; choose another --output "
                             "or pass --overwrite to replace a corpus made by avdiff synth")
        if not (output_dir / SETTINGS_NAME).is_file():
            raise InputError(f"{output_dir}: --overwrite only replaces a corpus made by avdiff synth "
                             f"(no {SETTINGS_NAME} there); refusing to delete other files")
        shutil.rmtree(output_dir / ITEMS_DIR, ignore_errors=True)
        for name in OUTPUT_NAMES:
            (output_dir / name).unlink(missing_ok=True)
    (output_dir / ITEMS_DIR).mkdir(parents=True, exist_ok=True)


def _write_json(path: Path, data: Any) -> None:
    _atomic(path, lambda p: p.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"))


def synthesize_corpus(output_dir: str | Path, settings: SynthSettings, workers: int = 1,
                      overwrite: bool = False, progress: bool = False) -> SynthReport:
    """Make the corpus described by `settings` in `output_dir` (see the module docstring)."""
    if workers < 1:
        raise InputError(f"--workers must be >= 1, got {workers}")
    output_dir = Path(output_dir)
    speakers, plans = plan_corpus(settings)
    prepare_output(output_dir, overwrite)
    results: Any = _results(plans, speakers, output_dir, settings.size, workers)
    if progress:
        from tqdm import tqdm

        results = tqdm(results, total=len(plans), desc="synth", unit="utt", file=sys.stderr)
    entries, alignments = [], []
    try:
        for entry, alignment in results:
            entries.append(entry)
            alignments.append(alignment)
    except Exception as error:
        if isinstance(error, AVDiffError):
            raise
        raise AVDiffError(f"synthesis failed ({type(error).__name__}: {error}); "
                          f"the partial corpus in {output_dir} has no manifest") from error
    split_of = {plan.id: plan.split for plan in plans}
    entries.sort(key=lambda e: e["id"])
    alignments.sort(key=lambda a: a["id"])
    _write_json(output_dir / "speakers.json", [speaker.to_json() for speaker in speakers])
    _atomic(output_dir / "alignments.jsonl", lambda p: p.write_text(
        "".join(json.dumps(a, ensure_ascii=False) + "\n" for a in alignments), encoding="utf-8"))
    report = SynthReport(output_dir=output_dir)
    for split in SPLITS:
        chosen = [e for e in entries if split_of[e["id"]] == split]
        write_manifest(output_dir / f"{split}.jsonl", chosen)
        report.counts[split] = len(chosen)
    write_manifest(output_dir / "manifest.jsonl", entries)
    report.hours = sum(e["duration"] for e in entries) / 3600
    _write_json(output_dir / SETTINGS_NAME, {
        "generator": "avdiff synth", "avdiff_version": __version__,
        "espeakng_loader_version": _package_version("espeakng-loader"),
        "settings": {**asdict(settings), "variants": list(settings.variants)},
        "counts": report.counts,
    })
    return report


def _package_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None
