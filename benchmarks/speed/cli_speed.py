"""Whole-process real-time factor of the command line, as a user meets it: `avdiff generate` on a
talking-face video and `avdiff enhance` on a noisy recording, process start included, and
`avdiff --help`.

Inputs (made once in OUTPUT/inputs): a `--seconds` long video joined from the real GRID clips of
../shared/data/grid (frames and audio, H.264 + AAC), and its audio mixed with the real noise of
../shared/data/noise at 0 dB. Jobs run as separate processes, side by side in rounds (every job
once per round, after a warm-up round that also fills the exported-network cache), median wall
seconds; RTF = wall seconds / seconds of audio. A job is `help`, or `generate` / `enhance` with
command-line flags: `generate:backend=torch,steps=4` runs `avdiff generate ... --backend torch
--steps 4`; `enhance:method=udiffse+,num-samples=1` likewise (method options are flags of enhance).
`checkout=DIR` among a job's flags runs the avdiff of another checkout (e.g. a `git worktree` of
the previous commit), so before and after are timed side by side in the same rounds.

    .venv/bin/python -m benchmarks.speed.cli_speed --seconds 6 --repeats 3 \\
        --jobs help generate:backend=torch generate enhance:backend=torch enhance
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avdiff.cpu import environment_without_defaults
from benchmarks.common.paths import SHARED_DATA, default_output
from benchmarks.common.record import record
from benchmarks.common.run_specs import parse_run_spec

DEFAULT_JOBS = ("help", "generate", "enhance")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="length of the input clip")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds after the warm-up round")
    parser.add_argument("--jobs", nargs="+", default=list(DEFAULT_JOBS), help="see the module docstring")
    parser.add_argument("--output", type=Path, default=default_output(__file__))
    return parser.parse_args(argv)


def joined_clip(folder: Path, seconds: float, out: Path) -> tuple[Path, np.ndarray]:
    """A video of `seconds` from the GRID clips of `folder` one after another, and its audio."""
    from avdiff.media import load_audio, read_video
    from avdiff.media.writing import write_video
    from avdiff.timegrid import SAMPLES_PER_FRAME, VIDEO_FPS

    frames_needed = int(round(seconds * VIDEO_FPS))
    frames, audio = [], []
    for clip in sorted(folder.glob("*.mpg")):
        video = read_video(clip)
        frames.append(video.frames)
        audio.append(load_audio(clip)[: len(video.frames) * SAMPLES_PER_FRAME])
        if sum(len(f) for f in frames) >= frames_needed:
            break
    video_frames = np.concatenate(frames)[:frames_needed]
    samples = np.concatenate(audio)[: frames_needed * SAMPLES_PER_FRAME]
    if len(video_frames) < frames_needed:
        raise SystemExit(f"the GRID clips of {folder} are shorter than {seconds} s together")
    return write_video(out, video_frames, audio=samples, codec="libx264"), samples


def make_inputs(folder: Path, seconds: float) -> dict[str, Path]:
    """OUTPUT/inputs/clip.mp4 and noisy.wav (made once)."""
    import soundfile as sf

    from avdiff.demo.mixing import NoiseBank, find_noise_dir, mix_at_snr

    folder.mkdir(parents=True, exist_ok=True)
    clip, noisy = folder / "clip.mp4", folder / "noisy.wav"
    if not (clip.is_file() and noisy.is_file()):
        _, speech = joined_clip(SHARED_DATA / "grid", seconds, clip)
        noise = NoiseBank(find_noise_dir()).excerpt(len(speech), np.random.default_rng(0))
        mixture, _ = mix_at_snr(speech, noise, 0.0)
        sf.write(noisy, mixture, 16000)
    return {"video": clip, "noisy": noisy}


@dataclass(frozen=True)
class Job:
    """One timed process: its command line, environment and folder."""

    command: list[str]
    environment: dict[str, str]
    folder: Path | None = None


def job(spec: str, inputs: dict[str, Path], out: Path) -> Job:
    """The process of job `spec`, writing to `out` (`checkout=DIR`: that checkout's avdiff, run from
    DIR so that `python -m avdiff` finds it before this one)."""
    name, flags = parse_run_spec(spec)
    environment = environment_without_defaults()  # each job picks its threads as a user's process does
    checkout = flags.pop("checkout", None)
    folder = Path(checkout).resolve() if checkout is not None else None
    if folder is not None:
        environment["PYTHONPATH"] = str(folder)
    return Job(_arguments(name, flags, inputs, out.resolve(), spec), environment, folder)


def _arguments(name: str, flags: dict, inputs: dict[str, Path], out: Path, spec: str) -> list[str]:
    avdiff = [sys.executable, "-m", "avdiff"]
    if name == "help":
        return [*avdiff, "--help"]
    if name not in ("generate", "enhance"):
        raise SystemExit(f"{spec}: a job is help, generate[:flag=value,...] or enhance[:flag=value,...]")
    source = ["--video", str(inputs["video"].resolve())] if name == "generate" else [
        "--noisy", str(inputs["noisy"].resolve())]
    extra = [part for key, value in flags.items() for part in (f"--{key}", str(value))]
    return [*avdiff, name, *source, "--output", str(out), "--overwrite", *extra]


def timed_rounds(jobs: dict[str, Job], repeats: int) -> dict[str, list[float]]:
    """Wall seconds of every job in `repeats` rounds after a warm-up round (each must succeed)."""
    times: dict[str, list[float]] = {spec: [] for spec in jobs}
    for round_number in range(repeats + 1):
        for spec, process in jobs.items():
            start = time.perf_counter()
            done = subprocess.run(process.command, capture_output=True, text=True, env=process.environment,
                                  cwd=process.folder)
            seconds = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(f"{spec} failed ({done.returncode}):\n{done.stderr[-2000:]}")
            if round_number:
                times[spec].append(seconds)
        print(f"round {round_number} done", flush=True)
    return times


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    inputs = make_inputs(args.output / "inputs", args.seconds)
    jobs = {spec: job(spec, inputs, args.output / "out" / f"{index}.wav") for index, spec in enumerate(args.jobs)}
    times = timed_rounds(jobs, args.repeats)
    rows = []
    for spec, values in times.items():
        median = statistics.median(values)
        audio = 0.0 if parse_run_spec(spec)[0] == "help" else args.seconds
        rows.append({"job": spec, "median_s": round(median, 3), "rtf": round(median / audio, 3) if audio else None,
                     "runs_s": [round(v, 3) for v in values]})
        rtf = f", RTF {median / audio:.3f}" if audio else ""
        print(f"{spec:50s} {median:7.2f} s{rtf}", flush=True)
    record(args.output, args, {"seconds_audio": args.seconds, "rows": rows})


if __name__ == "__main__":
    main()
