"""Word error rate of `avdiff synth` speech with an offline recogniser (pocketsphinx, en-us model).

Video-to-speech learns to produce the corpus's speech, so the corpus should be speech that a
recogniser understands. For the same random GRID sentences this script compares
- "espeak-ng defaults": en-us, rate 175 wpm, pitch 50, range 50, no word gap, no variant;
- "avdiff synth": the corpus's own speakers (`make_speakers(seed, K)`: eight voice variants,
  140-160 wpm, 0-10 ms word gaps, pitch range 50-65);
- with `--sweep V1 V2 ...`: each voice variant alone at the corpus's middle prosody;
- with `--prosody RATE:GAP:RANGE ...`: the plain voice at other rates, word gaps, pitch ranges.
Every condition goes through the corpus's own audio path (`make_utterance`: resampling to
16 kHz, silences, level, noise floor), so only the voice differs.

Two recognisers, both pocketsphinx's en-us acoustic model and dictionary (inside the wheel:
pip install 'avdiff[asr]'):
- grammar: the GRID grammar as a JSGF (any command, any colour, ...), the usual closed-set task;
- open: the general en-us trigram language model (any English word): much harsher.
WER = (substitutions + deletions + insertions) / reference words, pooled over utterances.

Writes OUTPUT/record.json (every condition's WER with the run's provenance) and results.md.
Example (the figures in BENCHMARKS.md):
    .venv/bin/python -m benchmarks.quality.synth_intelligibility --sentences 48 --output benchmarks/results/synth-wer
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from avdiff.evaluation.recognisers import GridRecogniser
from avdiff.evaluation.wer import word_edit_distance
from avdiff.grid_grammar import NUM_SENTENCES
from avdiff.synth.espeak import VoiceSettings
from avdiff.synth.grammar import Sentence
from avdiff.synth.speakers import DEFAULT_VARIANTS, Speaker, make_speakers
from avdiff.synth.utterance import make_utterance
from benchmarks.common.paths import default_output
from benchmarks.common.record import record


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=48, help="sentences per condition (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sentences and of the corpus speakers")
    parser.add_argument("--speakers", type=int, default=8, help="corpus speakers (default %(default)s)")
    parser.add_argument("--sweep", nargs="*", default=[], metavar="VARIANT",
                        help="also score each of these voice variants alone ('' = the plain voice)")
    parser.add_argument("--prosody", nargs="*", default=[], metavar="RATE:GAP:RANGE",
                        help="also score the plain voice at these settings, e.g. 175:0:50 150:3:65 "
                        "(words/min : word gap in 10 ms : pitch range)")
    parser.add_argument("--decoders", nargs="+", default=["grammar", "open"], choices=["grammar", "open"])
    parser.add_argument("--output", type=Path, default=default_output(__file__),
                        help="folder for record.json and results.md (default: %(default)s)")
    return parser.parse_args()


class OpenRecogniser(GridRecogniser):
    """pocketsphinx with its general en-us trigram language model (any English word)."""

    model = "open"

    def __init__(self) -> None:  # noqa: D107 - the grid recogniser's decoding, another search
        from pocketsphinx import Decoder, get_model_path

        folder = Path(get_model_path()) / "en-us"
        self.decoder = Decoder(hmm=str(folder / "en-us"), dict=str(folder / "cmudict-en-us.dict"),
                               lm=str(folder / "en-us.lm.bin"), loglevel="FATAL", cmn="batch")


def make_decoder(kind: str) -> GridRecogniser:
    return GridRecogniser() if kind == "grammar" else OpenRecogniser()


def score(speakers: list[Speaker], sentences: list[Sentence], decoders: dict, seed: int) -> dict:
    errors = {name: 0 for name in decoders}
    words = 0
    examples = []
    for k, sentence in enumerate(sentences):
        speaker = speakers[k % len(speakers)]
        utterance = make_utterance(sentence, speaker, seed=seed * 100003 + k, size=32)
        reference = sentence.text.split()
        words += len(reference)
        row = {"reference": sentence.text, "speaker": speaker.id}
        for name, decoder in decoders.items():
            hypothesis = decoder(utterance.audio).split()
            errors[name] += word_edit_distance(reference, hypothesis)
            row[name] = " ".join(hypothesis)
        examples.append(row)
    return {"wer": {name: errors[name] / words for name in decoders}, "words": words, "examples": examples[:6]}


def main() -> None:
    args = parse_args()
    rng = np.random.default_rng([args.seed, 2024])
    sentences = [Sentence.from_index(int(i)) for i in rng.choice(NUM_SENTENCES, args.sentences, replace=False)]
    decoders = {kind: make_decoder(kind) for kind in args.decoders}
    corpus_speakers = make_speakers(args.seed, args.speakers)
    plain = [replace(corpus_speakers[0], id="default", voice=VoiceSettings())]
    middle = VoiceSettings(rate=150, pitch=50, pitch_range=60, word_gap=0)
    conditions: list[tuple[str, list[Speaker]]] = [
        ("espeak-ng defaults (en-us, 175 wpm, no word gap)", plain),
        (f"avdiff synth ({args.speakers} speakers: {', '.join(DEFAULT_VARIANTS)})", corpus_speakers),
    ]
    for variant in args.sweep:
        voice = replace(middle, variant=variant)
        conditions.append((f"variant {variant or '(plain)'} at 150 wpm, no gap, range 60",
                           [replace(corpus_speakers[0], id=variant or "plain", voice=voice)]))
    for setting in args.prosody:
        rate, gap, pitch_range = (int(v) for v in setting.split(":"))
        voice = VoiceSettings(rate=rate, word_gap=gap, pitch_range=pitch_range)
        conditions.append((f"plain voice at {rate} wpm, gap {10 * gap} ms, range {pitch_range}",
                           [replace(corpus_speakers[0], id="plain", voice=voice)]))
    results = []
    for name, speakers in conditions:
        start = time.perf_counter()
        outcome = score(speakers, sentences, decoders, args.seed)
        outcome.update(condition=name, seconds=round(time.perf_counter() - start, 1))
        results.append(outcome)
        print(f"{name}: " + ", ".join(f"{d} WER {100 * w:.1f} %" for d, w in outcome["wer"].items())
              + f" ({outcome['words']} words, {outcome['seconds']} s)", flush=True)
    record(args.output, args, {"sentences": args.sentences, "seed": args.seed, "results": results})
    lines = ["| condition | " + " | ".join(f"WER {d}" for d in args.decoders) + " |",
             "|---|" + "---|" * len(args.decoders)]
    for row in results:
        lines.append(f"| {row['condition']} | " + " | ".join(f"{100 * row['wer'][d]:.1f} %" for d in args.decoders) + " |")
    (args.output / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
