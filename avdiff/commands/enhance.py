"""`avdiff enhance`: unsupervised enhancement of noisy speech, audio-only or with the lips."""

from __future__ import annotations

import argparse
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from avdiff.commands.common import (
    add_model_arguments,
    check_landmark_backend,
    load_pipeline,
    positive_float,
    positive_int,
    require_writable_folder,
    write_run_settings,
)
from avdiff.config.schema import EnhancementConfig, PosteriorSettings
from avdiff.diffusion.samplers import SAMPLERS
from avdiff.errors import InputError
from avdiff.media.files import AUDIO_SUFFIXES, VIDEO_INPUT_SUFFIXES
from avdiff.media.audio import write_wav
from avdiff.pipeline.batch import BatchItem, files_in, item_names, run_batch
from avdiff.pipeline.posterior_settings import METHOD_CHOICES, with_steps
from avdiff.pipeline.shipped import DEFAULT_ENHANCER
from avdiff.processes import launched_processes


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "enhance", help="enhance noisy speech by diffusion posterior sampling (with or without video)",
        description="Enhance a noisy recording (any rate or channel count; the output has its rate, "
        "length and channels, each channel enhanced on its own), or every audio file of a folder. With --video (a file, or a folder matched by file "
        "stem) the lips condition the speech prior; frames without a face fall back to the audio-only prior.")
    parser.add_argument("--noisy", type=Path, required=True, help="noisy audio file or folder")
    parser.add_argument("--video", type=Path, default=None, help="video / mouth-crop .npy, or a folder of them")
    parser.add_argument("--output", type=Path, default=None,
                        help="output .wav for one input, folder for many (default: <stem>_enhanced.wav / enhanced/)")
    defaults, posterior = EnhancementConfig(), PosteriorSettings()
    model_default = "the model's; without one in its folder {}"
    parser.add_argument("--method", choices=METHOD_CHOICES, default=None,
                        help="posterior sampler, or udiffse-paper: UDiffSE exactly as published "
                        f"(default: {model_default.format(defaults.method)})")
    parser.add_argument("--em-iterations", type=positive_int, default=None,
                        help=f"udiffse: EM iterations (default: {model_default.format(posterior.em_iterations)})")
    parser.add_argument("--likelihood-weight", type=positive_float, default=None,
                        help="lambda, the total weight of the likelihood step "
                        f"(default: {model_default.format(posterior.likelihood_weight)})")
    parser.add_argument("--num-samples", type=positive_int, default=None,
                        help=f"parallel samples averaged (default: {model_default.format(posterior.num_samples)})")
    parser.add_argument("--sampler", choices=sorted(SAMPLERS), default=None,
                        help=f"diffpir: the sampler (default: {model_default.format(posterior.sampler)})")
    parser.add_argument("--chunk-frames", type=positive_int, default=None,
                        help=f"STFT frames per chunk (long inputs; default: {model_default.format(defaults.chunk_frames)})")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help=f"chunks processed together (default: {model_default.format(defaults.batch_size)})")
    add_model_arguments(parser, default_model=DEFAULT_ENHANCER)
    parser.set_defaults(func=run)


def _match_video(video_dir: Path | None, stem: str) -> Path | None:
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


def _with_flags(settings: PosteriorSettings, args: argparse.Namespace) -> PosteriorSettings:
    """`settings` with the values of the flags the user gave."""
    flags = {"em_iterations": args.em_iterations, "likelihood_weight": args.likelihood_weight,
             "num_samples": args.num_samples, "sampler": args.sampler}
    return replace(settings, **{name: value for name, value in flags.items() if value is not None})


def enhance_channels(pipeline: Any, noisy: Path, **options: Any) -> tuple[np.ndarray, int, int, list[str]]:
    """Enhance every channel of `noisy` on its own (a mono file as before; identical channels once).

    Returns (audio (N,) or (N, channels), sample rate, network calls, notes): the output keeps the
    input's channels, rate and length. Options are `pipeline.enhance`'s."""
    from avdiff.media.audio import decode_audio_channels
    from avdiff.pipeline.inputs import channel_count

    if channel_count(noisy) == 1:
        result = pipeline.enhance(noisy, **options)
        return result.audio, result.sample_rate, result.network_calls, result.notes
    decoded = decode_audio_channels(noisy)
    channels = decoded.samples
    distinct = channels[:1] if (channels == channels[:1]).all() else channels
    notes = [f"{noisy.name}: {len(channels)} identical channels, enhanced once" if len(distinct) == 1
             else f"{noisy.name}: {len(channels)} channels, each enhanced on its own"]
    outputs, calls = [], 0
    for channel in distinct:
        result = pipeline.enhance(channel, sample_rate=decoded.sample_rate, **options)
        outputs.append(result.audio)
        calls += result.network_calls
        notes += [note for note in result.notes if note not in notes]
    audio = np.stack(outputs if len(distinct) > 1 else outputs * len(channels), axis=1)
    return audio, decoded.sample_rate, calls, notes


def run(args: argparse.Namespace) -> int:
    items, out_dir = _items(args)
    require_writable_folder(out_dir or items[0].output.parent, f"--output {args.output or items[0].output}")
    videos = files_in(args.video, VIDEO_INPUT_SUFFIXES) if args.video is not None and args.video.is_dir() else [args.video]
    check_landmark_backend(args, videos)
    processes = launched_processes()  # one, or those of accelerate launch / torchrun: a share each
    args.device = processes.device(args.device)
    pipeline = load_pipeline(args)
    defaults = pipeline.components.enhancement
    method_name = args.method or defaults.method
    method, settings = pipeline.enhancement_method(method_name)
    settings = with_steps(_with_flags(settings, args), args.steps)
    guidance = defaults.guidance_scale if args.guidance is None else args.guidance

    def process(item: BatchItem) -> None:
        video = item.inputs.get("video")
        if "video_dir" in item.inputs:
            video = _match_video(item.inputs["video_dir"], item.inputs["stem"])
        audio, rate, calls, notes = enhance_channels(
            pipeline, item.inputs["noisy"], video=video, method=method, guidance_scale=guidance, seed=args.seed,
            settings=settings, chunk_frames=args.chunk_frames, batch_size=args.batch_size,
            show_progress=args.progress, landmarks=args.landmarks, landmark_weights=args.landmark_weights)
        write_wav(item.output, audio, rate)
        for note in notes:
            print(f"note: {item.id}: {note}")
        mode = "audio-visual" if video is not None else "audio-only"
        print(f"{item.id}: {method_name} ({mode}), {calls} network calls -> {item.output}")

    report = run_batch(items, process, out_dir, overwrite=args.overwrite, processes=processes)
    if not processes.is_main:
        return 1 if report.failed else 0
    if report.done:
        settings_path = (out_dir / "enhance_settings.yaml") if out_dir else items[0].output.with_suffix(".settings.yaml")
        write_run_settings(settings_path, {"command": "enhance", "model": str(args.model), "method": method_name,
                                           "video": str(args.video) if args.video else None, "seed": args.seed,
                                           "guidance": guidance, **asdict(settings)})
    print(report.summary())
    return 1 if report.failed else 0
