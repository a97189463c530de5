"""Training speed with the CPU's full instruction set against AVX2 only, side by side on one machine.

Training budgets must hold on the slowest machine, a 2-core EPYC without AVX-512 that runs float32
2.5-4x slower than an AVX-512 one. On an AVX-512 machine this script times the same training steps
twice: as the machine runs them, and with torch, oneDNN and MKL held to AVX2
(`ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2`), which removes
the instruction set, not the other differences (clock, caches); a config timed on the real AVX2
machine (`--calibrate CONFIG=SECONDS`) scales the rest. Each job is a real `avdiff train` run of a
few steps in its own process; its seconds per optimizer step are the median of the TensorBoard
windows after the first. A job with cached front-end features runs twice on the same cache folder:
the first run's extra wall time over the second's is the time to write the cache.

    OMP_NUM_THREADS=2 .venv/bin/python -m benchmarks.speed.training_isa --steps 30 \
        --output benchmarks/results/training-isa

OUTPUT/table.md holds the table, OUTPUT/record.json its rows with the run's provenance.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from avdiff.config import AVDiffConfig, load_config  # imported first, avdiff sets OpenMP's defaults every run inherits
from avdiff.data.manifest import read_manifest
from benchmarks.common.paths import REPO_ROOT, default_output
from benchmarks.common.record import record
from benchmarks.speed.gpu_suite_table import train_scalars

AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
LOG_EVERY = 5  # steps per logged window; the first window (start-up) is left out of the median
QUIET = ["training.validate_every=0", "training.checkpoint_every=100000", f"training.log_every={LOG_EVERY}"]
SMALL = "data/synth-v2s-32spk/valid.jsonl"  # a cache job's clips: few, so the cache takes a minute
FRONTEND = "models/v2s/lip_encoder/diffusion_pytorch_model.safetensors"
# name: (config, --set options, cached front-end features)
JOBS = {
    "stage 1, lips on pixels (v2s-budget-lips-cpu)": ("v2s-budget-lips-cpu", [], False),
    "stage 1b, lips' context on cached features (v2s-budget-context-cpu)": (
        "v2s-budget-context-cpu", [f"lip_encoder.pretrained_frontend={FRONTEND}", f"data.train_manifest=[{SMALL}]"], True),
    "stage 2, score on whole clips, cached (v2s-budget-score-cpu)": (
        "v2s-budget-score-cpu", ["lip_encoder.pretrained=models/v2s-context", f"data.train_manifest=[{SMALL}]"], True),
    "stage 2 of models/v2s, frozen lips on pixels (v2s-score-cpu)": (
        "v2s-score-cpu", ["lip_encoder.pretrained=models/v2s"], False),
}


def train(config: str, settings: list[str], folder: Path, steps: int, env: dict[str, str]) -> tuple[float, float]:
    """(seconds per optimizer step, wall seconds) of an `avdiff train` run of `steps` steps."""
    command = [sys.executable, "-m", "avdiff", "train", "--config", config, "--output-dir", str(folder / "run"),
               "--cpu", "--max-steps", str(steps)]
    for setting in settings + QUIET:
        command += ["--set", setting]
    shutil.rmtree(folder / "run", ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(folder / "train.log", "w") as log:  # the run's own lines, to read when one fails
        subprocess.run(command, cwd=REPO_ROOT, env=env, check=True, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    resolved = load_config(AVDiffConfig, config, settings)
    samples = resolved.training.batch_size * resolved.training.gradient_accumulation_steps
    speeds = [value for step, value in train_scalars(folder / "run", "train/samples_per_s") if step > LOG_EVERY]
    return samples / statistics.median(speeds), wall


def measure(name: str, isa: str, steps: int, output: Path) -> dict:
    """One job under one instruction set: seconds per step, and the cache's writing time where it has one."""
    config, settings, cached = JOBS[name]
    env = {**os.environ, **(AVX2_ONLY if isa == "avx2" else {})}
    folder = output / f"{config}-{isa}"
    if cached:
        settings = settings + [f"training.frontend_cache_dir={folder / 'cache'}"]
        shutil.rmtree(folder / "cache", ignore_errors=True)
    step_s, wall = train(config, settings, folder, steps, env)
    row = {"job": name, "isa": isa, "step_s": step_s, "wall_s": wall}
    if cached:
        clips = len(read_manifest(REPO_ROOT / SMALL))
        _, wall_again = train(config, settings, folder, steps, env)
        row["cache_s_per_clip"] = max(wall - wall_again, 0.0) / clips
    print(row, flush=True)
    return row


def table(rows: list[dict], calibrate: dict[str, float]) -> str:
    """Markdown: each job's seconds per step natively and on AVX2 only, their ratio, the calibrated estimate."""
    by = {(row["job"], row["isa"]): row for row in rows}
    scale = statistics.mean(seconds / by[name, "avx2"]["step_s"] for name, seconds in calibrate.items())
    lines = ["| job | native s/step | AVX2-only s/step | ratio | est. AVX2 machine s/step | cache s/clip native / AVX2 |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name in JOBS:
        native, avx2 = by.get((name, "native")), by.get((name, "avx2"))
        if native is None or avx2 is None:
            continue
        cache = (f"{native['cache_s_per_clip']:.3f} / {avx2['cache_s_per_clip']:.3f}"
                 if "cache_s_per_clip" in native else "")
        lines.append(f"| {name} | {native['step_s']:.2f} | {avx2['step_s']:.2f} | {avx2['step_s'] / native['step_s']:.2f} "
                     f"| {avx2['step_s'] * scale:.2f} | {cache} |")
    return "\n".join(lines) + f"\n\nAVX2 machine / AVX2-only here: {scale:.2f} (from {calibrate})\n"


def main() -> None:
    """Time every job natively and on AVX2 only; write the table and the record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per run (windows of 5)")
    parser.add_argument("--jobs", nargs="+", choices=list(JOBS), default=list(JOBS))
    parser.add_argument("--calibrate", nargs="+", default=[
        "stage 1, lips on pixels (v2s-budget-lips-cpu)=1.8",
        "stage 2 of models/v2s, frozen lips on pixels (v2s-score-cpu)=2.15"],
        help="JOB=SECONDS: s/step measured alone on the AVX2 machine (BENCHMARKS.md, third session)")
    parser.add_argument("--output", type=Path, default=default_output(__file__))
    args = parser.parse_args()
    calibrate = {item.rsplit("=", 1)[0]: float(item.rsplit("=", 1)[1]) for item in args.calibrate}
    rows = [measure(name, isa, args.steps, args.output) for name in args.jobs for isa in ("native", "avx2")]
    text = table(rows, {name: s for name, s in calibrate.items() if name in args.jobs})
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "table.md").write_text(text)
    print(text)
    record(args.output, args, {"rows": rows, "calibrate": calibrate})


if __name__ == "__main__":
    main()
