"""Real-time factor of video-to-speech and of each enhancement method, and peak memory vs duration.

Builds the model of `--config` with random weights (speed and memory do not depend on them),
saves it as a model folder (or takes `--model`, a folder or a shipped model's name), and times `AVDiffusionPipeline.generate` / `.enhance` on random
inputs of `--seconds` seconds (median of `--repeats` runs after a warm-up). RTF = seconds of
compute per second of audio. Peak memory: each duration in `--memory-seconds` is enhanced
(udiffse+, a few levels: memory does not depend on the number of levels) in a fresh process,
which reports its peak resident set size (CPU) or peak allocated GPU memory.

    .venv/bin/python -m benchmarks.speed.pipeline_speed --config configs/tiny.yaml --device cpu \
        --output benchmarks/results/pipeline-tiny-cpu
    .venv/bin/python -m benchmarks.speed.pipeline_speed --model speech-prior --methods udiffse+ --memory-seconds

`--jobs` times named variants side by side instead, in rounds (every job once per round, so a
busier moment of the machine hits them all): `generate[:sampler=NAME,steps=N,guidance_scale=W,
num_samples=K,OPTION=V]` (K samples of the clip in one batch: RTF per second of audio made) or
`METHOD[:POSTERIOR_SETTING=V,...]`; `dtype=bfloat16` in either runs the score network in bf16 and
`backend=torch|onnxruntime` on that engine (`avdiff.inference`; default: the pipeline's, auto), e.g. a model's defaults against the previous ones:

    .venv/bin/python -m benchmarks.speed.pipeline_speed --model v2s --seconds 3 --repeats 5 --memory-seconds \
        --jobs generate:sampler=predictor_corrector,steps=30 generate

OUTPUT/record.json holds the rows and peak memories with the run's provenance
(`benchmarks.common.record`); OUTPUT/config.yaml the resolved config (with --config).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from avdiff.inference.compiled import COMPILE_MODES
from benchmarks.common.paths import REPO_ROOT, default_output
from benchmarks.common.record import record
from benchmarks.common.run_specs import parse_run_spec
from benchmarks.common.profile_summary import profile_run


def build_model_folder(config_path: Path, overrides: list[str], folder: Path) -> Path:
    from avdiff.config import AVDiffConfig, load_config
    from avdiff.diffusion import build_formulation
    from avdiff.pipeline import ModelComponents, save_model_folder
    from avdiff.models.backbones import build_backbone
    from avdiff.training.model import build_lip_encoder

    config = load_config(AVDiffConfig, config_path, overrides)
    torch.manual_seed(0)
    components = ModelComponents(build_lip_encoder(config.lip_encoder), build_backbone(config.score_model),
                                 build_formulation(config.diffusion, sigma_data=config.diffusion.sigma_data or 0.1),
                                 config.spectrogram, config.sampler, config.data.crop_size)
    return save_model_folder(components, folder)



def job_runner(pipeline, spec: str, video: np.ndarray, noisy: np.ndarray, calls: list[int]):
    """A function running the job `spec` once (see the module docstring), appending its network calls."""
    name, changes = parse_run_spec(spec)
    if "dtype" in changes or "backend" in changes:  # the same model in another dtype (autocast) or engine
        dtype = getattr(torch, changes.pop("dtype")) if "dtype" in changes else pipeline.dtype
        pipeline = type(pipeline)(pipeline.components, pipeline.device, dtype,
                                  backend=changes.pop("backend", pipeline.backend.name))
    if name == "generate":
        fixed = {key: changes.pop(key) for key in ("sampler", "steps", "guidance_scale", "num_samples") if key in changes}
        return lambda: calls.append(pipeline.generate(video, sampler_options=changes, **fixed).network_calls)
    plan = pipeline.enhancement_plan(name, options=changes)
    return lambda: calls.append(pipeline.enhance(noisy, sample_rate=16000, video=video, plan=plan).network_calls)


def timed_rounds(runs: dict, device: str, repeats: int) -> dict[str, float]:
    """Median seconds of every run, timed in `repeats` rounds after one warm-up round."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_number in range(repeats + 1):
        for name, run in runs.items():
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            run()
            if device == "cuda":
                torch.cuda.synchronize()
            if round_number:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def memory_run(model: Path, seconds: float, device: str, steps: int) -> None:
    """Child process: enhance `seconds` of noise and print the peak memory in MiB."""
    from avdiff.pipeline.pipeline import AVDiffusionPipeline

    pipeline = AVDiffusionPipeline.from_pretrained(model, device=device)
    noisy = (0.05 * np.random.default_rng(0).standard_normal(int(seconds * 16000))).astype(np.float32)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    pipeline.enhance(noisy, sample_rate=16000, method="udiffse+", steps=steps)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak}))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("configs/tiny.yaml"))
    parser.add_argument("--model", default=None, help="time this model folder / shipped model instead of --config's")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seconds", type=float, default=4.0, help="input length for the RTF runs")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--methods", nargs="+", default=["generate", "udiffse+", "dps", "udiffse"])
    parser.add_argument("--jobs", nargs="+", default=None, help="named variants timed side by side (see above)")
    parser.add_argument("--memory-seconds", type=float, nargs="*", default=[10, 60, 300])
    parser.add_argument("--memory-steps", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="torch.compile the score network (`pipeline.compile`)")
    parser.add_argument("--compile-mode", default=None, choices=COMPILE_MODES,
                        help="torch.compile's mode with --compile (default: the pipeline's for the device)")
    parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"],
                        help="the pipeline's dtype (default: the device's, `default_dtype`)")
    parser.add_argument("--profile", action="store_true",
                        help="after timing, run each job once under torch.profiler: OUTPUT/profile-JOB.txt and a summary "
                             "per row (kernel launches, host-device copies and syncs, GPU busy time)")
    parser.add_argument("--output", type=Path, default=default_output(__file__),
                        help="folder for record.json and config.yaml (default: %(default)s)")
    parser.add_argument("--child-memory", nargs=2, metavar=("MODEL", "SECONDS"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def load_pipeline(args: argparse.Namespace):
    """(model folder, pipeline): --model, or --config's network with random weights saved to a temporary folder."""
    from avdiff.pipeline.pipeline import AVDiffusionPipeline

    if args.model:
        from avdiff.pipeline.shipped import resolve_model

        model = resolve_model(args.model)
    else:
        model = build_model_folder(args.config, args.overrides, Path(tempfile.mkdtemp(prefix="avdiff-bench-")) / "model")
    pipeline = AVDiffusionPipeline.from_pretrained(model, device=args.device, dtype=args.dtype)
    if args.compile:
        pipeline.compile(args.compile_mode)
    return model, pipeline


def rtf_rows(pipeline, args: argparse.Namespace) -> list[dict]:
    """Median seconds and RTF of every job (or method) on random inputs of --seconds."""
    rng = np.random.default_rng(0)
    frames = int(round(args.seconds * 25))
    video = rng.integers(0, 255, (frames, pipeline.crop_size, pipeline.crop_size), dtype=np.uint8)
    noisy = (0.05 * rng.standard_normal(frames * 640)).astype(np.float32)
    audio_seconds = frames * 640 / 16000
    calls: dict[str, list[int]] = {spec: [] for spec in args.jobs or args.methods}
    runs = {spec: job_runner(pipeline, spec, video, noisy, calls[spec]) for spec in calls}
    rows = []
    for spec, median in timed_rounds(runs, args.device, args.repeats).items():
        made = audio_seconds * (parse_run_spec(spec)[1].get("num_samples", 1) if spec.startswith("generate") else 1)
        rows.append({"method": spec, "seconds_audio": made, "median_s": median,
                     "rtf": median / made, "network_calls": calls[spec][-1]})
        print(f"{spec:10s} {made:.2f} s audio: {median:8.2f} s, RTF {median / made:.3f}, "
              f"{calls[spec][-1]} network calls", flush=True)
        if args.profile:
            rows[-1]["profile"] = profile_run(runs[spec], args.device, args.output / f"profile-{spec.replace(':', '_')}.txt")
            print(f"{spec:10s} profile: {rows[-1]['profile']}", flush=True)
    return rows


def memory_rows(model: Path, args: argparse.Namespace) -> list[dict]:
    """Peak memory enhancing each of --memory-seconds, each in a fresh process."""
    memory = []
    for seconds in args.memory_seconds:
        child = subprocess.run([sys.executable, "-m", __spec__.name, "--device", args.device, "--memory-steps",
                                str(args.memory_steps), "--child-memory", str(model), str(seconds)],
                               capture_output=True, text=True, check=True, cwd=REPO_ROOT)
        memory.append(json.loads(child.stdout.strip().splitlines()[-1]))
        print(f"peak memory enhancing {seconds:.0f} s: {memory[-1]['peak_mib']:.0f} MiB", flush=True)
    return memory


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child_memory:
        memory_run(Path(args.child_memory[0]), float(args.child_memory[1]), args.device, args.memory_steps)
        return
    model, pipeline = load_pipeline(args)
    summary = {"config": str(args.config), "model": str(model), "overrides": args.overrides, "device": args.device,
               "rows": rtf_rows(pipeline, args), "memory": memory_rows(model, args)}
    record(args.output, args, summary)
    if not args.model:
        from avdiff.config import AVDiffConfig, load_config, save_config

        save_config(load_config(AVDiffConfig, args.config, args.overrides), args.output / "config.yaml")


if __name__ == "__main__":
    main()
