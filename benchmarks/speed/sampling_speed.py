"""Network calls per second and real-time factor of sampling speech with the score network.

Samples `--seconds` of audio (default 2.048 s = 256 STFT frames of 256 bins) with the
predictor-corrector sampler at `--calls` network calls (default 60 = 30 levels x 2), from
noise to waveform (iSTFT included), with a random lip condition and random weights (speed
does not depend on the weights). For each batch size and mode (eager, compiled) it reports
the median over `--repeats` timed runs after one warm-up run:

- network calls/s: forward passes of the whole batch per second;
- RTF: seconds of compute per second of audio produced (batch items count as audio).

Writes OUTPUT/record.json (the rows with the run's provenance: `benchmarks.common.record`),
results.md and the resolved config.yaml. Example (the figures in BENCHMARKS.md):
    .venv/bin/python -m benchmarks.speed.sampling_speed --config configs/tiny.yaml --device cpu \
        --batch-sizes 1 4 --modes eager compiled --output benchmarks/results/tiny-cpu
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from avdiff.audio import SpectrogramTransform
from avdiff.config import AVDiffConfig, load_config, save_config
from avdiff.diffusion import Denoiser, build_formulation, guided_denoiser, initial_noise, make_generators
from avdiff.diffusion.samplers import sample_predictor_corrector
from avdiff.models import ScoreUNet
from benchmarks.common.paths import default_output
from benchmarks.common.record import record


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("configs/tiny.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1])
    parser.add_argument("--modes", nargs="+", choices=["eager", "compiled"], default=["eager"])
    parser.add_argument("--calls", type=int, default=60, help="network calls per run (even: PC uses 2 per level)")
    parser.add_argument("--seconds", type=float, default=2.048, help="audio length per item")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default=None,
                        help="network precision (default: bfloat16 on CUDA, float32 on CPU)")
    parser.add_argument("--sigma-data", type=float, default=0.2, help="used when the config leaves it null")
    parser.add_argument("--output", type=Path, default=default_output(__file__),
                        help="folder for record.json, results.md, config.yaml (default: %(default)s)")
    parser.add_argument("--calls-only", action="store_true",
                        help="time single network calls (median of --repeats) instead of whole sampling runs")
    return parser.parse_args()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_run(run, device: torch.device, repeats: int) -> list[float]:
    run()  # warm-up (and compilation)
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        run()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def count_gflop(network: ScoreUNet, config: AVDiffConfig, frames: int, bins: int, device: torch.device) -> float:
    """FLOPs of one batch-1 network call, counted by torch's FlopCounterMode.

    Counted at the padded size the network works on (FlopCounterMode's module tracker cannot
    follow the padding path's tensor-free null-condition call).
    """
    from torch.utils.flop_counter import FlopCounterMode

    multiple = network.size_multiple
    bins, frames = bins + (-bins % multiple), frames + (-frames % multiple)
    x = torch.zeros(1, 2, bins, frames, device=device)
    cond = torch.zeros(1, config.score_model.cond_channels, frames, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        network(x, torch.zeros(1, device=device), cond=cond)
    return counter.get_total_flops() / 1e9


def time_sampling(network, formulation, transform, config: AVDiffConfig, args: argparse.Namespace,
                  dtype: torch.dtype, frames: int, num_samples: int) -> list[dict]:
    """One row per mode and batch size: median seconds, network calls/s and RTF (see the module docstring)."""
    device = torch.device(args.device)
    sigmas = formulation.sampling_sigmas(args.calls // 2, device=device)
    results = []
    for mode in args.modes:
        denoiser = Denoiser(torch.compile(network) if mode == "compiled" else network, formulation)
        for batch in args.batch_sizes:
            cond = torch.randn(batch, config.score_model.cond_channels, frames, device=device)
            generators = make_generators(range(batch))
            calls_made = []

            def run() -> None:
                with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                    x = initial_noise((batch, 2, transform.num_bins, frames), sigmas[0].item(), generators, device)
                    if args.calls_only:  # one network call stands for a run of `--calls` of them
                        denoiser(x, sigmas[:1].expand(batch), cond=cond)
                        calls_made.append(1)
                        return
                    out = sample_predictor_corrector(guided_denoiser(denoiser, cond), x, sigmas, generators=generators)
                    transform.decode(out.sample, num_samples)
                calls_made.append(out.network_calls)

            times = time_run(run, device, args.repeats)
            results.append(result_row(args, mode, batch, times, calls_made[-1],
                                      batch * num_samples / config.spectrogram.sample_rate))
    return results


def result_row(args: argparse.Namespace, mode: str, batch: int, times: list[float], calls: int,
               audio_seconds: float) -> dict:
    """The row of one (mode, batch): per-run seconds (scaled from single calls with --calls-only)."""
    median = statistics.median(times)
    per_call = median / calls
    run_seconds = per_call * args.calls if args.calls_only else median
    row = {"mode": mode, "batch": batch, "network_calls": args.calls if args.calls_only else calls,
           "measured": "single calls" if args.calls_only else "whole runs", "median_s": run_seconds,
           "times_s": times, "calls_per_s": 1.0 / per_call, "rtf": run_seconds / audio_seconds}
    what = "per call" if args.calls_only else "per run"
    print(f"{mode:8s} batch {batch:3d}: {median:8.3f} s {what}, {row['calls_per_s']:8.2f} calls/s, "
          f"RTF {row['rtf']:.4f} at {args.calls} calls  (timed: {', '.join(f'{t:.3f}' for t in times)})", flush=True)
    return row


def write_outputs(args: argparse.Namespace, config: AVDiffConfig, summary: dict) -> None:
    """OUTPUT/record.json (the summary with the run's provenance), results.md and config.yaml."""
    record(args.output, args, summary)
    save_config(config, args.output / "config.yaml", header=f"resolved config of {__spec__.name} ({args.config})")
    lines = ["| mode | batch | calls | measured | median s/run | calls/s | RTF |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['mode']} | {r['batch']} | {r['network_calls']} | {r['measured']} | {r['median_s']:.3f} | "
              f"{r['calls_per_s']:.2f} | {r['rtf']:.4f} |" for r in summary["results"]]
    (args.output / "results.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output}/record.json, results.md and config.yaml")


def main() -> None:
    args = parse_args()
    if args.calls % 2:
        raise SystemExit("--calls must be even (the predictor-corrector sampler makes 2 calls per level)")
    config = load_config(AVDiffConfig, args.config, args.overrides)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.bfloat16 if device.type == "cuda" else torch.float32)
    transform = SpectrogramTransform(config.spectrogram)
    frames = round(args.seconds * transform.frame_rate)  # 2.048 s -> 256 STFT frames (the 256 x 256 anchor)
    num_samples = transform.num_samples(frames)  # the audio those frames cover (2.04 s)

    torch.manual_seed(0)
    network = ScoreUNet.from_avdiff_config(config.score_model).to(device).eval()
    params = sum(p.numel() for p in network.parameters())
    gflop = count_gflop(network, config, frames, transform.num_bins, device)
    print(f"score network: {params / 1e6:.2f} M parameters, {gflop:.1f} GFLOP per call per item "
          f"({transform.num_bins} x {frames})", flush=True)
    formulation = build_formulation(config.diffusion, sigma_data=config.diffusion.sigma_data or args.sigma_data)
    results = time_sampling(network, formulation, transform, config, args, dtype, frames, num_samples)
    summary = {"config": str(args.config), "overrides": args.overrides, "parameters": params, "gflop_per_call": gflop,
               "audio_seconds": num_samples / config.spectrogram.sample_rate, "frames": frames,
               "device": args.device, "dtype": str(dtype).removeprefix("torch."), "results": results}
    write_outputs(args, config, summary)


if __name__ == "__main__":
    main()
