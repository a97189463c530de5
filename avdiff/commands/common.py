"""Arguments and helpers shared by the batch commands (`generate`, `enhance`; the output check also
`prepare` and `evaluate`)."""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from avdiff.errors import InputError
from avdiff.inference.choices import AUTO as AUTO_ENGINE, BACKEND_CHOICES as ENGINE_CHOICES
from avdiff.landmarks import BACKEND_CHOICES, DEFAULT_BACKEND


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (0 or less is an error, never 'the default')."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text}")
    return value


def finite_float(text: str) -> float:
    """argparse type: a finite number (nan and inf are errors)."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_model_arguments(parser: argparse.ArgumentParser, default_model: str | None = None) -> None:
    """The model and sampling flags; `default_model` names the shipped model used without --model."""
    if default_model is None:
        parser.add_argument("--model", required=True,
                            help="model folder (DIR/model of a training run) or the name of a shipped model")
    else:
        parser.add_argument("--model", default=default_model,
                            help="model folder or the name of a shipped model (default: the shipped "
                            f"{default_model!r}, models/{default_model}/)")
    parser.add_argument("--steps", type=positive_int, default=None, help="noise levels (default: the model's sampler steps)")
    parser.add_argument("--guidance", type=finite_float, default=None, help="classifier-free guidance scale w")
    parser.add_argument("--seed", type=int, default=0, help="random seed (per item; batch-size independent)")
    add_runtime_arguments(parser)
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the score network (CPU: 0.70x the time per call after a ~50 s compile; "
                             "GPU: CUDA graphs, a 4 s clip's enhancement 4x faster after ~30 s)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    parser.add_argument("--progress", action="store_true", help="show the sampler's progress bar")


def add_lip_agreement_argument(parser: argparse.ArgumentParser) -> None:
    """--lip-agreement / --no-lip-agreement (enhance, extract): trust the lips only where they agree
    with the sound."""
    from avdiff.pipeline.shipped import LIP_AGREEMENT_BY_DEFAULT

    parser.add_argument("--lip-agreement", action=argparse.BooleanOptionalAction, default=LIP_AGREEMENT_BY_DEFAULT,
                        help="trust the lips only where their predicted envelope moves with the audio's (a mismatched "
                        "or dubbed video gets the audio-only prior; default: %(default)s, avdiff.pipeline.shipped.LIP_AGREEMENT_BY_DEFAULT)")


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """Where and how a model runs, and how video is read: --device, --dtype, --landmarks,
    --landmark-weights (the batch commands and `avdiff serve`)."""
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default=None,
                        help="score network dtype (default: bfloat16 on GPUs and on CPUs with native bfloat16, "
                        "avx512_bf16 or AMX, where it halves the time at the same quality; float32 elsewhere)")
    parser.add_argument("--backend", choices=ENGINE_CHOICES, default=AUTO_ENGINE,
                        help="engine of the score network: torch, or onnxruntime (float32 on the CPU; 1.4-1.6x "
                        "faster there); auto: onnxruntime on CPUs without native bfloat16 where it is installed, "
                        "torch elsewhere")
    parser.add_argument("--landmarks", choices=BACKEND_CHOICES, default=DEFAULT_BACKEND,
                        help="landmark backend for video files (as in avdiff prepare; auto: face-alignment where its "
                        "weights are at hand, dlib otherwise, said in one line)")
    parser.add_argument("--landmark-weights", default=None, help="face-alignment weights folder / dlib model file")


def open_pipeline(args: argparse.Namespace) -> Any:
    """The pipeline of --model (a folder or a shipped name; a diffusion model or a speech VAE) on
    --device with --dtype, compiled with --compile."""
    from avdiff.pipeline.loading import load_pipeline

    pipeline = load_pipeline(args.model, device=args.device, dtype=args.dtype, backend=args.backend)
    if args.compile:
        pipeline.compile()
    return pipeline


def engine_settings(pipeline: Any) -> dict[str, str]:
    """Where a model ran, for the run's settings file: device, the score network's dtype and engine
    (torch or onnxruntime: their outputs differ in the last bits, BENCHMARKS.md "Real time on every CPU")."""
    backend = getattr(pipeline, "backend", None)  # a VAE runs in torch
    return {"device": str(pipeline.device), "dtype": str(pipeline.dtype).removeprefix("torch."),
            "engine": backend.name if backend is not None else "torch"}


def write_run_settings(path: Path, settings: dict[str, Any]) -> None:
    """The settings a batch or file was produced with, written beside the outputs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# settings these outputs were produced with\n" + yaml.safe_dump(settings, sort_keys=False))


def finish_batch(report: Any, processes: Any, out_dir: Path | None, first_output: Path, command: str,
                 settings: dict[str, Any]) -> int:
    """The end of a batch command: on the main process, the settings the outputs were made with
    (`<command>_settings.yaml` in the folder, or `<output>.settings.yaml` for one file; when
    something was written, or when a re-run finds every output there but not the settings, as
    after a run killed between its last output and its end) and the report's summary; the exit
    code (1 if any item failed)."""
    if processes.is_main:
        path = (out_dir / f"{command}_settings.yaml") if out_dir else first_output.with_suffix(".settings.yaml")
        if report.done or (report.skipped and not report.failed and not path.exists()):
            write_run_settings(path, {"command": command, **settings})
        print(report.summary())
    return 1 if report.failed else 0


def require_writable_folder(folder: Path, flag: str = "--output") -> None:
    """Create `folder` (and missing parents) and prove that a file can be written there, before any
    model is loaded or anything computed: InputError naming `flag` and the folder otherwise."""
    folder = Path(folder)
    blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise InputError(f"{flag}: cannot write to {folder}: {blocker} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".avdiff-write-test-{os.getpid()}-"):
            pass
    except OSError as error:
        raise InputError(f"{flag}: cannot write to {folder} ({error.strerror or type(error).__name__}); "
                         "choose a folder you can write to") from error


def check_landmark_backend(args: argparse.Namespace, inputs: Iterable[Path | None]) -> None:
    """Load the landmark backend once, up front, when any input is a video file (not mouth crops):
    a missing package or a bad --landmark-weights file is one error, not one per item (where the
    front-end already runs in a prefetch process, its load is the check)."""
    from avdiff.media.files import MOUTH_ARRAY_SUFFIX

    if not any(path is not None and Path(path).suffix.lower() != MOUTH_ARRAY_SUFFIX for path in inputs):
        return
    choose_landmark_backend(args)
    prefetch = getattr(args, "mouth_prefetch", None)  # the front-end already running (avdiff.pipeline.mouth_prefetch)
    if prefetch is not None and prefetch.check_backend():
        return
    import torch

    from avdiff.landmarks import check_backend

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    check_backend(args.landmarks, device="cuda" if device.startswith("cuda") else "cpu", weights=args.landmark_weights)


def start_mouth_prefetch(command: str, argv: list[str]) -> Any:
    """The mouth front-end of `argv`'s --video (`avdiff.pipeline.mouth_prefetch`), started before
    the command's imports when `command` reads one video file with dlib; else None. Only --video
    and the runtime flags are read here: a bad command line is the command's parser's to report."""
    from avdiff.commands import COMMANDS_WITH_VIDEO
    from avdiff.pipeline.mouth_prefetch import prefetch_video

    if command not in COMMANDS_WITH_VIDEO:
        return None
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    parser.add_argument("--video", type=Path, default=None)
    add_runtime_arguments(parser)
    try:
        args, _ = parser.parse_known_args(argv)
    except (SystemExit, argparse.ArgumentError):
        return None
    return prefetch_video(args.video, args.landmarks, args.landmark_weights)


def prefetched_video(args: argparse.Namespace, video: Any, pipeline: Any) -> Any:
    """`video`, or its mouth crops when the prefetch process made them (`avdiff.pipeline.mouth_prefetch`)
    and the model reads lips (an audio-only prior ignores the video: its errors must not fail the item)."""
    prefetch = getattr(args, "mouth_prefetch", None)
    reads_lips = getattr(getattr(pipeline, "components", None), "audio_visual", False) and hasattr(pipeline, "crop_size")
    if prefetch is None or video is None or not reads_lips:
        return video
    taken = prefetch.take(video, pipeline.crop_size, getattr(pipeline, "mouth_model", None))
    return video if taken is None else taken


def choose_landmark_backend(args: argparse.Namespace) -> None:
    """Resolve `--landmarks auto` once, in place, and say in one line which backend runs and why."""
    from avdiff.landmarks import AUTO, choose_backend

    if args.landmarks != AUTO:
        return
    choice = choose_backend(args.landmarks, args.landmark_weights)
    args.landmarks, args.landmark_weights = choice.name, choice.weights
    print(choice.describe(), file=sys.stderr)
