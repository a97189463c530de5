"""`avdiff prepare`: decode videos, find landmarks, crop mouths, resample audio, write a manifest."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from avdiff.commands import summary
from avdiff.commands.common import choose_landmark_backend, require_writable_folder
from avdiff.errors import InputError
from avdiff.landmarks import BACKEND_CHOICES, check_backend
from avdiff.prepare import LAYOUTS, PrepareSettings, prepare_corpus
from avdiff.prepare.layouts import is_audio_only
from avdiff.processes import launched_processes


def register(subparsers: argparse._SubParsersAction) -> None:
    defaults = PrepareSettings()
    parser = subparsers.add_parser(
        "prepare",
        help=summary("prepare"),
        description="Decode each video (resampled to 25 fps) and its audio (16 kHz mono, 640 samples a "
        "frame), find face landmarks, crop the mouth (aligned to a reference face, grayscale), and "
        "write OUTPUT/items/<id>.wav, OUTPUT/items/<id>.npy (uint8 T x S x S) and OUTPUT/manifest.jsonl. "
        "Audio-only layouts (speech, librispeech, vctk) write 16 kHz mono utterances (long recordings cut "
        "at pauses into pieces of at most 20 s) with \"video\": null. "
        "Re-running skips items already in the manifest; unusable items are listed with a one-line "
        "reason in OUTPUT/rejects.jsonl and the batch carries on. Exit code 0: every item prepared (or "
        "already there); 1: some items rejected; 2: an error stopped the run.",
    )
    parser.add_argument("--layout", required=True, choices=sorted(LAYOUTS), help="folder structure of INPUT")
    parser.add_argument("--input", required=True, type=Path, help="root folder of the raw corpus")
    parser.add_argument("--output", required=True, type=Path, help="folder for the prepared corpus")
    parser.add_argument("--landmarks", choices=BACKEND_CHOICES, default=defaults.landmarks,
                        help="landmark backend (default %(default)s: face-alignment where its weights are at hand, "
                        "dlib otherwise; dlib needs pip install 'avdiff[dlib]')")
    parser.add_argument("--landmark-weights", type=Path, default=None, metavar="PATH",
                        help="face-alignment: folder holding its weight files (offline machines); "
                        "dlib: the 68-point shape predictor file")
    parser.add_argument("--device", default=defaults.device, help="torch device for face-alignment (default cpu)")
    parser.add_argument("--workers", type=int, default=1, help="parallel worker processes (default 1)")
    parser.add_argument("--roi-size", type=int, default=defaults.roi_size,
                        help="stored mouth crop side in pixels (default %(default)s; train on the 88 x 88 centre)")
    parser.add_argument("--max-gap", type=int, default=defaults.max_gap,
                        help="interpolate missing-face runs up to this many frames; longer ones are "
                        "kept as face_ok=false (default %(default)s)")
    parser.add_argument("--min-duration", type=float, default=defaults.min_duration,
                        help="reject clips shorter than this, in seconds (default %(default)s)")
    parser.add_argument("--max-duration", type=float, default=defaults.max_duration,
                        help="reject clips longer than this, in seconds (default %(default)s)")
    parser.add_argument("--min-face-fraction", type=float, default=defaults.min_face_fraction,
                        help="reject clips with a usable face in fewer frames than this fraction (default %(default)s)")
    parser.add_argument("--max-side", type=int, default=defaults.max_side,
                        help="shrink frames at decode so the longer side is at most this (default %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="prepare only the first N items (trial runs)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    if not is_audio_only(args.layout):
        choose_landmark_backend(args)  # `auto` -> one backend for every worker, said once
    processes = launched_processes()  # one, or those of accelerate launch / torchrun: a share each
    try:
        settings = PrepareSettings(
            landmarks=args.landmarks, device=processes.device(args.device),
            landmark_weights=str(args.landmark_weights) if args.landmark_weights else None,
            roi_size=args.roi_size, max_gap=args.max_gap, min_duration=args.min_duration,
            max_duration=args.max_duration, min_face_fraction=args.min_face_fraction, max_side=args.max_side,
        )
    except ValueError as error:
        raise InputError(str(error)) from error
    require_writable_folder(args.output, f"--output {args.output}")
    if not is_audio_only(args.layout):  # one clear error up front, not one per item
        check_backend(settings.landmarks, device=settings.device, weights=settings.landmark_weights)
    report = prepare_corpus(args.layout, args.input, args.output, settings, workers=args.workers,
                            limit=args.limit, progress=not args.no_progress and sys.stderr.isatty(),
                            processes=processes)
    if processes.is_main:
            print(f"prepared {len(report.prepared)}, skipped {len(report.skipped)} (already done), "
              f"rejected {len(report.rejected)}; manifest: {report.manifest}"
              + (f"; rejects: {report.rejects}" if report.rejected else ""))
    return 1 if report.rejected else 0
