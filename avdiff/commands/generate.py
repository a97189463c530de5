"""`avdiff generate`: speech from silent talking-face video (a file, a folder or a manifest)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from avdiff.commands import summary
from avdiff.commands.common import (
    add_model_arguments,
    check_landmark_backend,
    engine_settings,
    finish_batch,
    open_pipeline,
    positive_float,
    positive_int,
    prefetched_video,
    require_writable_folder,
)
from avdiff.pipeline.shipped import DEFAULT_GENERATOR
from avdiff.config.schema import SAMPLING_STARTS
from avdiff.data.manifest import has_video, read_manifest, resolve
from avdiff.diffusion.samplers import SAMPLERS
from avdiff.errors import InputError
from avdiff.media.files import VIDEO_INPUT_SUFFIXES
from avdiff.media.audio import write_wav
from avdiff.pipeline.batch import BatchItem, files_in, item_names, run_batch
from avdiff.pipeline.inputs import MouthVideo
from avdiff.processes import launched_processes


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate", help=summary("generate"),
        description="Generate speech for a talking-face video file, a mouth-crop .npy, a folder of them, "
        "or a manifest (.jsonl). Outputs are 16 kHz WAVs of exactly the video's duration; existing "
        "outputs are skipped, failed items reported in failures.jsonl.")
    parser.add_argument("--video", type=Path, required=True, help="video file, mouth-crop .npy, folder or manifest")
    parser.add_argument("--output", type=Path, default=None,
                        help="output .wav for one input, folder for many (default: <input stem>.wav / generated/)")
    parser.add_argument("--sampler", choices=sorted(SAMPLERS), default=None, help="sampler (default: the model's)")
    parser.add_argument("--num-samples", type=positive_int, default=1, help="samples per input (<id>_s<k>.wav when > 1)")
    parser.add_argument("--start", choices=SAMPLING_STARTS, default=None,
                        help="where sampling starts: pure noise, or a rendition of the lips' envelope noised to "
                        "--start-sigma (default: the model's)")
    parser.add_argument("--start-sigma", type=positive_float, default=None, metavar="S",
                        help="a rendition start's noise level in sigma_data (default: the model's)")
    parser.add_argument("--pitch", type=positive_float, default=None, metavar="HZ",
                        help="the voice's pitch in a rendition start (default: the model's)")
    add_model_arguments(parser, default_model=DEFAULT_GENERATOR)
    parser.set_defaults(func=run)


def _items(args: argparse.Namespace) -> tuple[list[BatchItem], Path | None]:
    source: Path = args.video
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    if source.is_file() and source.suffix == ".jsonl":
        out_dir = args.output or Path("generated")
        items = [BatchItem(item["id"], out_dir / f"{item['id']}.wav",
                           {"video": resolve(source, item["video"]), "face_ok": item.get("face_ok")},
                           source=resolve(source, item["video"]))
                 for item in read_manifest(source) if has_video(item)]
        if not items:
            raise InputError(f"{source}: no item of the manifest has video (audio-only speech cannot be generated)")
        return items, out_dir
    if source.is_dir():
        out_dir = args.output or Path("generated")
        files = files_in(source, VIDEO_INPUT_SUFFIXES)
        if not files:
            raise InputError(f"{source}: no video or .npy files")
        return [BatchItem(name, out_dir / f"{name}.wav", {"video": p}, source=p)
                for name, p in zip(item_names(files, source), files)], out_dir
    output = args.output or Path(f"{source.stem}.wav")
    return [BatchItem(source.stem, output, {"video": source}, source=source)], None


def sample_paths(output: Path, count: int) -> list[Path]:
    """Where the samples of one input go: OUT.wav, or OUT_s0.wav, OUT_s1.wav, ..."""
    if count == 1:
        return [output]
    return [output.with_name(f"{output.stem}_s{k}{output.suffix}") for k in range(count)]


def run(args: argparse.Namespace) -> int:
    items, out_dir = _items(args)
    require_writable_folder(out_dir or items[0].output.parent, f"--output {args.output or items[0].output}")
    check_landmark_backend(args, [item.inputs["video"] for item in items])
    processes = launched_processes()  # one, or those of accelerate launch / torchrun: a share each
    args.device = processes.device(args.device)
    pipeline = open_pipeline(args)
    try:
        plan = pipeline.generation_plan(sampler=args.sampler, steps=args.steps, guidance_scale=args.guidance,
                                        num_samples=args.num_samples, start=args.start, start_sigma=args.start_sigma,
                                        pitch_hz=args.pitch)
    except ValueError as error:  # e.g. a pitch out of range: one clear line, not a traceback
        raise InputError(str(error)) from None
    for item in items:  # with several samples, the last sample's file (written last) marks the item done
        item.inputs["base"] = item.output
        item.output = sample_paths(item.output, args.num_samples)[-1]

    def process(item: BatchItem) -> None:
        video = item.inputs["video"]
        if item.inputs.get("face_ok") is not None:
            rois = np.load(video, allow_pickle=False)
            video = MouthVideo(rois, np.asarray(item.inputs["face_ok"], dtype=bool))
        else:
            video = prefetched_video(args, video, pipeline)
        result = pipeline.generate(video, plan, seed=args.seed, show_progress=args.progress,
                                   landmarks=args.landmarks, landmark_weights=args.landmark_weights)
        base = item.inputs["base"]
        for path, audio in zip(sample_paths(base, args.num_samples), result.audio):
            write_wav(path, audio, result.sample_rate)
        for note in result.notes:
            print(f"note: {item.id}: {note}")
        print(f"{item.id}: {len(result.audio[0]) / result.sample_rate:.2f} s x {args.num_samples}, "
              f"{result.network_calls} network calls -> {base}")

    report = run_batch(items, process, out_dir, overwrite=args.overwrite, processes=processes)
    return finish_batch(report, processes, out_dir, items[0].output, "generate",
                        {"model": str(args.model), "seed": args.seed, "plan": plan.to_dict(),
                         "runtime": engine_settings(pipeline)})
