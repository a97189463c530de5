"""How far a compiled score network's outputs are from eager ones: the same inputs and seeds
through one pipeline eager and one `pipeline.compile(MODE)`, per job and dtype.

SNR (dB) of the compiled output against the eager one, beside eager against eager again (the
floor of run-to-run differences); fused kernels round differently, so tens of dB are expected and
a wrong graph shows as a few. Inputs: random video and a modulated tone in noise, `--seconds` long.

    python -m benchmarks.speed.compiled_agreement --device cuda --model v2s --mode reduce-overhead \\
        --dtypes bfloat16 float32 --output benchmarks/results/compiled-agreement
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from avdiff.inference.compiled import COMPILE_MODES
from avdiff.timegrid import SAMPLE_RATE, SAMPLES_PER_FRAME
from benchmarks.common.paths import default_output
from benchmarks.common.record import record

JOBS = ("udiffse+", "udiffse+lips", "generate")


def inputs(seconds: float, crop_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(video (T, crop, crop) uint8, audio float32): random frames and a modulated tone in noise."""
    rng = np.random.default_rng(0)
    frames = int(round(seconds * SAMPLE_RATE / SAMPLES_PER_FRAME))
    video = rng.integers(0, 255, (frames, crop_size, crop_size), dtype=np.uint8)
    t = np.arange(frames * SAMPLES_PER_FRAME) / SAMPLE_RATE
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    return video, (tone + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def outputs(pipeline, jobs: list[str], video: np.ndarray, audio: np.ndarray) -> dict[str, np.ndarray]:
    """Each job's audio, seed 3."""
    made = {}
    for job in jobs:
        if job == "generate":
            made[job] = np.asarray(pipeline.generate(video, seed=3).audio)
        else:
            made[job] = np.asarray(pipeline.enhance(audio, sample_rate=SAMPLE_RATE, video=video,
                                                    plan=pipeline.enhancement_plan(job), seed=3).audio)
    return made


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    error = float(np.sum((reference.ravel() - other.ravel()) ** 2))
    return float(10 * np.log10(np.sum(reference ** 2) / max(error, 1e-30)))


def agreement(args: argparse.Namespace, dtype: str) -> list[dict]:
    """Rows for one dtype: eager twice, compiled twice (the first run compiles), compared."""
    from avdiff.pipeline.pipeline import AVDiffusionPipeline

    eager = AVDiffusionPipeline.from_pretrained(args.model, device=args.device, dtype=dtype)
    video, audio = inputs(args.seconds, eager.crop_size)
    first, again = outputs(eager, args.jobs, video, audio), outputs(eager, args.jobs, video, audio)
    compiled = AVDiffusionPipeline.from_pretrained(args.model, device=args.device, dtype=dtype)
    compiled.compile(args.mode)
    outputs(compiled, args.jobs, video, audio)
    graphed = outputs(compiled, args.jobs, video, audio)
    rows = [{"dtype": dtype, "job": job, "eager_again_snr_db": snr_db(first[job], again[job]),
             "compiled_snr_db": snr_db(first[job], graphed[job]),
             "max_abs_difference": float(np.abs(first[job] - graphed[job]).max())} for job in args.jobs]
    for row in rows:
        print(f"{dtype:9s} {row['job']:13s} eager again {row['eager_again_snr_db']:6.1f} dB, compiled "
              f"{row['compiled_snr_db']:6.1f} dB, max |difference| {row['max_abs_difference']:.2e}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="v2s", help="model folder or shipped model's name")
    parser.add_argument("--device", default="cuda", help="torch device")
    parser.add_argument("--mode", default=None, choices=COMPILE_MODES,
                        help="torch.compile mode (default: the pipeline's for the device)")
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16", "float32"], help="pipeline dtypes to compare in")
    parser.add_argument("--jobs", nargs="+", default=list(JOBS), help="enhancement methods and/or generate")
    parser.add_argument("--seconds", type=float, default=4.0, help="input length")
    parser.add_argument("--output", type=Path, default=default_output(__file__), help="folder for record.json")
    args = parser.parse_args(argv)
    rows = [row for dtype in args.dtypes for row in agreement(args, dtype)]
    record(args.output, args, {"rows": rows})


if __name__ == "__main__":
    main()
