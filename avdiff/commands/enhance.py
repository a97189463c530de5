"""`avdiff enhance`: unsupervised enhancement of noisy speech, audio-only or with the lips."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

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
from avdiff.commands.method_options import add_method_option_flags, given_method_options
from avdiff.config.schema import EnhancementConfig
from avdiff.errors import InputError
from avdiff.media.files import AUDIO_SUFFIXES, VIDEO_INPUT_SUFFIXES
from avdiff.media.audio import write_wav
from avdiff.pipeline.batch import BatchItem, files_in, item_names, run_batch
from avdiff.posterior.registry import METHODS
from avdiff.pipeline.shipped import DEFAULT_ENHANCER
from avdiff.processes import launched_processes

if TYPE_CHECKING:
    import numpy as np


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "enhance", help=summary("enhance"),
        description="Enhance a noisy recording (any rate or channel count; the output has its rate, "
        "length and channels, each channel enhanced on its own), or every audio file of a folder. With --video (a file, or a folder matched by file "
        "stem) the lips condition the speech prior; frames without a face fall back to the audio-only prior. "
        "The method's options (below) default to what the model folder records for its own method, else to "
        "the method's registered defaults.")
    parser.add_argument("--noisy", type=Path, required=True, help="noisy audio file or folder")
    parser.add_argument("--video", type=Path, default=None, help="video / mouth-crop .npy, or a folder of them")
    parser.add_argument("--output", type=Path, default=None,
                        help="output .wav for one input, folder for many (default: <stem>_enhanced.wav / enhanced/)")
    defaults = EnhancementConfig()
    methods = "; ".join(f"{name}: {entry.summary}" for name, entry in METHODS.items())
    parser.add_argument("--method", choices=METHODS.names(), default=None,
                        help=f"posterior method or preset (default: the model's, without one {defaults.method}). {methods}")
    parser.add_argument("--chunk-frames", type=positive_int, default=None,
                        help=f"STFT frames per chunk (long inputs; default: the model's, without one {defaults.chunk_frames})")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help=f"chunks processed together (default: the model's, without one {defaults.batch_size})")
    add_model_arguments(parser, default_model=DEFAULT_ENHANCER)
    add_lip_agreement_argument(parser)
    add_method_option_flags(parser.add_argument_group("method options (from the registry of posterior methods)"),
                            skip=("steps",))
    parser.set_defaults(func=run)


def match_video(video_dir: Path | None, stem: str) -> Path | None:
    if video_dir is None:
        return None
    for suffix in VIDEO_INPUT_SUFFIXES:
        candidate = video_dir / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    raise InputError(f"no video for {stem!r} in {video_dir} (looked for {stem}.mp4, .npy, ...)")


def _items(args: argparse.Namespace) -> tuple[list[BatchItem], Path | None]:
    source: Path = args.noisy
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    if source.is_dir():
        if args.video is not None and not args.video.is_dir():
            raise InputError("--noisy is a folder, so --video must be a folder too (matched by file stem)")
        out_dir = args.output or Path("enhanced")
        files = files_in(source, AUDIO_SUFFIXES)
        if not files:
            raise InputError(f"{source}: no audio files")
        return [BatchItem(name, out_dir / f"{name}.wav", {"noisy": p, "video_dir": args.video, "stem": p.stem}, source=p)
                for name, p in zip(item_names(files, source), files)], out_dir
    output = args.output or Path(f"{source.stem}_enhanced.wav")
    return [BatchItem(source.stem, output, {"noisy": source, "video": args.video}, source=source)], None


def write_switch_report(path: Path, switch: np.ndarray) -> None:
    """The switching VAE's posterior probability of the audio-visual model at each STFT frame."""
    from avdiff.timegrid import SAMPLE_RATE, STFT_HOP_LENGTH

    path.write_text(json.dumps({"frame_rate_hz": SAMPLE_RATE / STFT_HOP_LENGTH,
                                "audio_visual_probability": [round(float(p), 4) for p in switch]}) + "\n")


def describe_input_report(report: dict[str, float]) -> str:
    """One line for people: the input's estimated SNR and what the method chose by it."""
    parts = [f"input SNR about {report['snr_db']:.0f} dB (frame level {report['frame_snr_db']:.0f} dB)"]
    if "start_sigma" in report:
        parts.append(f"started at {report['start_sigma']:.2g} sigma_data")
    if report.get("input_share"):
        parts.append(f"{report['input_share']:.0%} of the input given back")
    if "lips_likelihood_weight" in report:
        parts.append(f"the lips' likelihood weight {report['lips_likelihood_weight']:.2g}")
    return ", ".join(parts)


def run(args: argparse.Namespace) -> int:
    from avdiff.pipeline.channels import enhance_channels  # the networks: loaded when the command runs

    items, out_dir = _items(args)
    require_writable_folder(out_dir or items[0].output.parent, f"--output {args.output or items[0].output}")
    videos = files_in(args.video, VIDEO_INPUT_SUFFIXES) if args.video is not None and args.video.is_dir() else [args.video]
    check_landmark_backend(args, videos)
    processes = launched_processes()  # one, or those of accelerate launch / torchrun: a share each
    args.device = processes.device(args.device)
    pipeline = open_pipeline(args)
    method = pipeline.enhancement_plan(args.method).method  # --method, else the model's
    plan = pipeline.enhancement_plan(method, steps=args.steps, guidance_scale=args.guidance,
                                     chunk_frames=args.chunk_frames, batch_size=args.batch_size,
                                     options=given_method_options(args, method))

    heard: dict[str, dict[str, float]] = {}  # what the method estimated from each input (SNR, start level)

    def process(item: BatchItem) -> None:
        video = item.inputs.get("video")
        if "video_dir" in item.inputs:
            video = match_video(item.inputs["video_dir"], item.inputs["stem"])
        video = prefetched_video(args, video, pipeline)
        result = enhance_channels(pipeline, item.inputs["noisy"], plan=plan, video=video, seed=args.seed,
                                  show_progress=args.progress, landmarks=args.landmarks,
                                  landmark_weights=args.landmark_weights, lip_agreement=args.lip_agreement)
        write_wav(item.output, result.audio, result.sample_rate)
        if result.switch is not None:
            write_switch_report(item.output.with_suffix(".switch.json"), result.switch)
            print(f"{item.id}: the audio-visual model on {float((result.switch > 0.5).mean()):.0%} of frames "
                  f"(switch posterior in {item.output.with_suffix('.switch.json').name})")
        for note in result.notes:
            print(f"note: {item.id}: {note}")
        if "snr_db" in result.input_report:
            heard[item.id] = result.input_report
            print(f"{item.id}: {describe_input_report(result.input_report)}")
        mode = "audio-visual" if video is not None else "audio-only"
        print(f"{item.id}: {plan.method} ({mode}), {result.network_calls} network calls -> {item.output}")

    report = run_batch(items, process, out_dir, overwrite=args.overwrite, processes=processes)
    return finish_batch(report, processes, out_dir, items[0].output, "enhance",
                        {"model": str(args.model), "video": str(args.video) if args.video else None,
                         "seed": args.seed, "lip_agreement": args.lip_agreement, "plan": plan.to_dict(),
                         "runtime": engine_settings(pipeline), **({"inputs": heard} if heard else {})})
