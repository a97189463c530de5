"""`avdiff extract`: the talker whose lips a video shows, from a mixture of talkers and noise."""

from __future__ import annotations

import argparse
from pathlib import Path

from avdiff.commands import summary
from avdiff.commands.common import (
    add_lip_agreement_argument,
    add_model_arguments,
    check_landmark_backend,
    engine_settings,
    finish_batch,
    open_pipeline,
    positive_int,
    prefetched_video,
    require_writable_folder,
)
from avdiff.commands.enhance import match_video
from avdiff.commands.method_options import add_settings_flags, given_settings
from avdiff.errors import InputError
from avdiff.media.audio import write_wav
from avdiff.media.files import AUDIO_SUFFIXES, VIDEO_INPUT_SUFFIXES
from avdiff.pipeline.batch import BatchItem, files_in, item_names, run_batch
from avdiff.pipeline.shipped import DEFAULT_AUDIO_VISUAL
from avdiff.posterior.extraction import ExtractionSettings
from avdiff.processes import launched_processes

OPTION_PREFIX = "extraction_option_"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "extract", help=summary("extract"),
        description="Target-speaker extraction without training on mixtures: the target from the lip-conditioned "
        "speech prior and the interfering talker from the same prior with the lips masked (or conditioned on its "
        "own video, --interferer-video) are sampled jointly under mixture = target + interferer + noise. --mixture "
        "is a file or a folder (videos then matched by file stem); existing outputs are skipped, failed items "
        "reported in failures.jsonl.")
    parser.add_argument("--mixture", type=Path, required=True, help="mixture audio file or folder")
    parser.add_argument("--video", type=Path, required=True, help="the target's video / mouth-crop .npy, or a folder")
    parser.add_argument("--interferer-video", type=Path, default=None,
                        help="the interfering talker's video (file or folder; default: its prior has no lips)")
    parser.add_argument("--output", type=Path, default=None,
                        help="output .wav for one input, folder for many (default: <stem>_extracted.wav / extracted/)")
    parser.add_argument("--write-interferer", action="store_true",
                        help="also write the interferer's estimate (<output stem>_interferer.wav / OUTPUT/interferer/)")
    parser.add_argument("--chunk-frames", type=positive_int, default=None, help="STFT frames per chunk (default: the model's)")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="chunks processed together (default: the model's)")
    add_model_arguments(parser, default_model=DEFAULT_AUDIO_VISUAL)
    add_lip_agreement_argument(parser)
    add_settings_flags(parser.add_argument_group("options of the joint pass"), ExtractionSettings, OPTION_PREFIX,
                       skip=("steps",))
    parser.set_defaults(func=run)


def _items(args: argparse.Namespace) -> tuple[list[BatchItem], Path | None]:
    source: Path = args.mixture
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    if not source.is_dir():
        output = args.output or Path(f"{source.stem}_extracted.wav")
        inputs = {"mixture": source, "video": args.video, "interferer_video": args.interferer_video,
                  "interferer_output": output.with_name(f"{output.stem}_interferer.wav")}
        return [BatchItem(source.stem, output, inputs, source=source)], None
    for flag, folder in (("--video", args.video), ("--interferer-video", args.interferer_video)):
        if folder is not None and not folder.is_dir():
            raise InputError(f"--mixture is a folder, so {flag} must be a folder too (matched by file stem)")
    out_dir = args.output or Path("extracted")
    files = files_in(source, AUDIO_SUFFIXES)
    if not files:
        raise InputError(f"{source}: no audio files")
    return [BatchItem(name, out_dir / f"{name}.wav",
                      {"mixture": p, "video_dir": args.video, "interferer_dir": args.interferer_video, "stem": p.stem,
                       "interferer_output": out_dir / "interferer" / f"{name}.wav"}, source=p)
            for name, p in zip(item_names(files, source), files)], out_dir


def _videos(item: BatchItem) -> tuple[Path, Path | None]:
    """(the target's video, the interferer's or None) of an item."""
    if "video_dir" not in item.inputs:
        return item.inputs["video"], item.inputs["interferer_video"]
    target = match_video(item.inputs["video_dir"], item.inputs["stem"])
    folder = item.inputs["interferer_dir"]
    return target, None if folder is None else match_video(folder, item.inputs["stem"])


def run(args: argparse.Namespace) -> int:
    from avdiff.pipeline.extraction import extract, extraction_plan  # the networks: loaded when the command runs

    items, out_dir = _items(args)
    require_writable_folder(out_dir or items[0].output.parent, f"--output {args.output or items[0].output}")
    check_landmark_backend(args, [p for folder in (args.video, args.interferer_video) if folder is not None
                                  for p in (files_in(folder, VIDEO_INPUT_SUFFIXES) if folder.is_dir() else [folder])])
    processes = launched_processes()
    args.device = processes.device(args.device)
    pipeline = open_pipeline(args)
    plan = extraction_plan(pipeline, steps=args.steps, guidance_scale=args.guidance,
                           options=given_settings(args, OPTION_PREFIX), chunk_frames=args.chunk_frames,
                           batch_size=args.batch_size)

    def process(item: BatchItem) -> None:
        video, interferer_video = _videos(item)
        video = prefetched_video(args, video, pipeline)
        result = extract(pipeline, item.inputs["mixture"], video, interferer_video=interferer_video, plan=plan,
                         seed=args.seed, show_progress=args.progress, landmarks=args.landmarks,
                         landmark_weights=args.landmark_weights, lip_agreement=args.lip_agreement)
        if args.write_interferer:  # first, so that an existing target output means a finished item
            write_wav(item.inputs["interferer_output"], result.interferer, result.sample_rate)
        write_wav(item.output, result.target, result.sample_rate)
        for note in result.notes:
            print(f"note: {item.id}: {note}")
        print(f"{item.id}: {plan.describe()}, {result.network_calls} network calls -> {item.output}")

    report = run_batch(items, process, out_dir, overwrite=args.overwrite, processes=processes)
    return finish_batch(report, processes, out_dir, items[0].output, "extract",
                        {"model": str(args.model), "video": str(args.video),
                         "interferer_video": str(args.interferer_video) if args.interferer_video else None,
                         "seed": args.seed, "lip_agreement": args.lip_agreement, "plan": plan.to_dict(),
                         "runtime": engine_settings(pipeline)})
