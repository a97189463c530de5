"""Which inference speed-ups pay on this machine: one denoiser call of a model, under variants.

Variants, timed side by side in rounds (each once per round, median over rounds after a
warm-up round): `no_grad` (the baseline), `inference_mode`, `channels_last` (network weights
and input in NHWC), `compile` (torch.compile of the network, default mode; its compile time is
reported apart) and `bf16` (autocast). Also the per-call cost of drawing the sampler's noise
with per-item CPU generators, against the call itself.

    .venv/bin/python -m benchmarks.speed.cpu_speedups --model v2s --frames 375 --batch 2 --repeats 10

Prints the table; OUTPUT/record.json keeps its rows with the run's provenance.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from pathlib import Path

import torch

from benchmarks.common.paths import default_output
from benchmarks.common.record import record


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="v2s", help="model folder or shipped model name")
    parser.add_argument("--frames", type=int, default=375, help="STFT frames of the input (375 = 3 s)")
    parser.add_argument("--batch", type=int, default=2, help="batch (2 = guidance's doubled batch of one clip)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--variants", nargs="+",
                        default=["no_grad", "inference_mode", "channels_last", "compile", "bf16"])
    parser.add_argument("--output", type=Path, default=default_output(__file__),
                        help="folder for record.json (default: %(default)s)")
    return parser.parse_args(argv)


def variant_call(name: str, denoiser, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor):
    """A function running one denoiser call under the variant `name`."""
    import copy

    model = denoiser
    if name == "channels_last":
        model = copy.deepcopy(denoiser)
        model.network = model.network.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if name == "compile":
        model = copy.deepcopy(denoiser)
        model.network = torch.compile(model.network)
    context = {"inference_mode": torch.inference_mode, "bf16": lambda: torch.autocast("cpu", dtype=torch.bfloat16)}
    enter = context.get(name, torch.no_grad)

    def run() -> None:
        with enter(), (torch.no_grad() if name == "bf16" else contextlib.nullcontext()):
            model(x, sigma, cond=cond)

    return run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from avdiff.diffusion.noise import make_generators, randn_like_per_item
    from avdiff.pipeline.pipeline import AVDiffusionPipeline

    pipeline = AVDiffusionPipeline.from_pretrained(args.model, device="cpu")
    bins = pipeline.transform.num_bins
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 2, bins, args.frames, generator=generator) * 0.1
    sigma = torch.full((args.batch,), 0.1)
    cond = torch.randn(args.batch, pipeline.components.score_model.config.cond_channels, args.frames, generator=generator)
    runs = {}
    for name in args.variants:
        runs[name] = variant_call(name, pipeline.denoiser, x, sigma, cond)
        start = time.perf_counter()
        runs[name]()
        print(f"{name}: first call {time.perf_counter() - start:.2f} s (compilation included)", flush=True)
    generators = make_generators(range(args.batch))
    runs["noise draw"] = lambda: randn_like_per_item(x, generators)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    print(f"\nmodel {args.model}, input {tuple(x.shape)}, {torch.get_num_threads()} threads, median of {args.repeats}")
    rows = table_rows(times)
    print("| variant | median ms | vs no_grad |\n| --- | --- | --- |")
    for row in rows:
        ratio = "-" if row["vs_no_grad"] is None else f"{row['vs_no_grad']:.2f}"
        print(f"| {row['variant']} | {row['median_ms']:.1f} | {ratio} |")
    record(args.output, args, {"input_shape": list(x.shape), "rows": rows})


def table_rows(times: dict[str, list[float]]) -> list[dict]:
    """Median milliseconds of each variant and its ratio to `no_grad` (None without it)."""
    base = statistics.median(times["no_grad"]) if "no_grad" in times else None
    rows = []
    for name, values in times.items():
        median = statistics.median(values)
        rows.append({"variant": name, "median_ms": 1000 * median,
                     "vs_no_grad": median / base if base else None})
    return rows


if __name__ == "__main__":
    main()
