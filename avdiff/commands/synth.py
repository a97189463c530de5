"""`avdiff synth`: the synthetic audio-visual GRID-style corpus (DESIGN.md section 6)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from avdiff.commands import summary
from avdiff.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    from avdiff.synth.speakers import DEFAULT_VARIANTS

    parser = subparsers.add_parser(
        "synth",
        help=summary("synth"),
        description="Speak random GRID sentences (\"bin blue at f two now\") with espeak-ng in several voices "
        "and render an 88 x 88 grayscale mouth video at 25 fps from the phoneme timings, in the layout of "
        "`avdiff prepare`: OUTPUT/items/<id>.wav (16 kHz, 640 samples a frame), OUTPUT/items/<id>.npy (uint8 "
        "T x S x S), OUTPUT/manifest.jsonl and train/valid/test.jsonl with disjoint sentences, plus "
        "alignments.jsonl (word and phoneme times), speakers.json and synth.json. The same seed gives the "
        "same bytes whatever --workers.",
    )
    parser.add_argument("--output", type=Path, help="folder for the corpus (must be empty or absent)")
    parser.add_argument("--num-utterances", type=int, help="number of utterances to make")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    parser.add_argument("--speakers", type=int, default=8, help="number of speakers (default %(default)s)")
    parser.add_argument("--voices", default=",".join(DEFAULT_VARIANTS), metavar="V1,V2,...",
                        help="espeak-ng voice variants, given to the speakers in turn (default %(default)s; "
                        "see --list-voices)")
    parser.add_argument("--valid-fraction", type=float, default=0.05, help="share of sentences for validation (default %(default)s)")
    parser.add_argument("--test-fraction", type=float, default=0.05, help="share of sentences for test (default %(default)s)")
    parser.add_argument("--disjoint-speakers", action="store_true",
                        help="also hold out whole speakers: validation and test speakers never appear in training")
    parser.add_argument("--size", type=int, default=88, help="mouth frame side in pixels (default %(default)s)")
    parser.add_argument("--workers", type=int, default=1, help="parallel worker processes (default %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing corpus made by avdiff synth in OUTPUT")
    parser.add_argument("--list-voices", action="store_true", help="list the espeak-ng voice variants and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from avdiff.synth.corpus import SynthSettings, synthesize_corpus
    from avdiff.synth.espeak import available_variants

    if args.list_voices:
        print("\n".join(available_variants()))
        return 0
    if args.output is None or args.num_utterances is None:
        raise InputError("--output and --num-utterances are required (or use --list-voices)")
    variants = tuple(v.strip() for v in args.voices.split(",") if v.strip())
    settings = SynthSettings(num_utterances=args.num_utterances, seed=args.seed, speakers=args.speakers,
                             variants=variants, valid_fraction=args.valid_fraction,
                             test_fraction=args.test_fraction, disjoint_speakers=args.disjoint_speakers,
                             size=args.size)
    start = time.perf_counter()
    report = synthesize_corpus(args.output, settings, workers=args.workers, overwrite=args.overwrite,
                               progress=not args.no_progress and sys.stderr.isatty())
    elapsed = time.perf_counter() - start
    counts = ", ".join(f"{split} {count}" for split, count in report.counts.items())
    print(f"synthesised {args.num_utterances} utterances ({report.hours * 60:.1f} min of audio; {counts}) "
          f"in {elapsed:.1f} s; manifest: {report.output_dir / 'manifest.jsonl'}")
    return 0
