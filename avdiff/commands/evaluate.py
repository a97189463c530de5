"""`avdiff evaluate`: objective metrics of estimates against references, with baselines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from avdiff.commands import summary
from avdiff.commands.common import require_writable_folder
from avdiff.errors import InputError
from avdiff.evaluation.signals import DEFAULT_LENGTH_TOLERANCE_MS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help=summary("evaluate"),
        description="Score every audio file of --estimate against the file of --reference with the same "
        "relative path (extension ignored), at 16 kHz mono: SI-SDR, PESQ wide-band and narrow-band (8 kHz), "
        "STOI, ESTOI, log-spectral distance, and WER when --asr names an ASR model available offline. "
        "With --noisy the noisy inputs are scored as a baseline (and SI-SDR improvement is reported); "
        "--baselines adds noisereduce's spectral gating run on --noisy. Writes the summary JSON to --output, "
        "the per-file CSV and a markdown table (mean ± 95 % CI) beside it; an existing summary is kept unless "
        "--overwrite. Files that cannot be scored are listed with the reason and the others scored (exit code 1); "
        "exit code 2: nothing could be evaluated.")
    parser.add_argument("--reference", type=Path, required=True, help="folder of clean reference audio")
    parser.add_argument("--estimate", type=Path, required=True, help="folder of generated/enhanced audio")
    parser.add_argument("--noisy", type=Path, default=None, help="folder of the noisy inputs (baseline row)")
    parser.add_argument("--output", type=Path, default=Path("metrics.json"),
                        help="summary JSON (default metrics.json); .csv and .md are written beside it")
    parser.add_argument("--asr", default=None, metavar="MODEL",
                        help="recogniser for WER (and per-slot accuracy of GRID sentences): grid (the GRID grammar, "
                        "pocketsphinx), a CTranslate2 Whisper folder (faster-whisper; ../shared/tools/whisper-base.sh), "
                        "or a transformers ASR model (local folder or model id in the HF cache); never downloaded")
    parser.add_argument("--baselines", action="store_true",
                        help="also run and score noisereduce on --noisy (into <output stem>_noisereduce/)")
    parser.add_argument("--name", default=None, help="system name in the tables (default: the estimate folder's name)")
    parser.add_argument("--length-tolerance-ms", type=float, default=DEFAULT_LENGTH_TOLERANCE_MS,
                        help="trim length differences up to this many ms, refuse larger ones "
                        f"(default {DEFAULT_LENGTH_TOLERANCE_MS:g})")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output (default: refuse)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _baseline_log(line: str) -> None:
    """stderr, minus what the main evaluation already said (unmatched names, the WER note)."""
    if not line.startswith(("evaluate: extra in estimate", "evaluate: missing in estimate", "WER skipped")):
        print(line, file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from avdiff.evaluation import evaluate_folders, markdown_table, noisereduce_folder

    if args.output.suffix.lower() in (".csv", ".md"):
        raise InputError(f"--output {args.output}: name the JSON summary (e.g. metrics.json)")
    if args.baselines and args.noisy is None:
        raise InputError("--baselines needs --noisy (noisereduce runs on the noisy inputs)")
    if args.length_tolerance_ms < 0:
        raise InputError("--length-tolerance-ms must be >= 0")
    _check_output(args)
    result = evaluate_folders(args.reference, args.estimate, args.noisy, args.asr, name=args.name,
                              length_tolerance_ms=args.length_tolerance_ms, show_progress=not args.no_progress)
    if args.baselines:
        nr_dir = args.output.parent / f"{args.output.stem}_noisereduce"
        noisereduce_folder(args.noisy, nr_dir)
        baseline = evaluate_folders(args.reference, nr_dir, None, args.asr, name="noisereduce",
                                    ids=[row["id"] for row in result.rows],
                                    length_tolerance_ms=args.length_tolerance_ms, show_progress=not args.no_progress,
                                    log=_baseline_log)
        result.baselines["noisereduce"] = baseline
        result.settings["noisereduce"] = f"noisereduce.reduce_noise defaults (non-stationary), outputs in {nr_dir}"
    result.settings["command"] = "evaluate"
    paths = result.write(args.output)
    print(markdown_table(result.systems()), end="")
    print(f"wrote {paths['json']}, {paths['csv']}, {paths['markdown']}")
    if result.unusable:
        print(f"evaluate: {len(result.unusable)} file(s) could not be scored (listed in {paths['markdown']})",
              file=sys.stderr)
    return 1 if result.unusable else 0


def _check_output(args: argparse.Namespace) -> None:
    """Before any computing: the output folder is writable, and an existing summary is only
    replaced with --overwrite (as the other commands skip existing outputs)."""
    outputs = [args.output, args.output.with_suffix(".csv"), args.output.with_suffix(".md")]
    existing = [path for path in outputs if path.exists()]
    if existing and not args.overwrite:
        raise InputError(f"--output {args.output}: {', '.join(p.name for p in existing)} already exist(s) in "
                         f"{args.output.parent}; pass --overwrite to replace them, or choose another --output")
    require_writable_folder(args.output.parent, f"--output {args.output}")
