"""One forward pass of the tiny score network on a shared CPU: OpenMP threads and wait policy.

With torch's OpenMP defaults, threads that wait for a core another process holds spin instead of
sleeping, and every process wants every core. avdiff sets OMP_NUM_THREADS from the free cores
and OMP_WAIT_POLICY=PASSIVE when it is imported first (`avdiff/cpu.py`). This script measures,
in one run and side by side, the median time of a forward pass of the tiny score UNet on a
256 x 384 spectrogram (3 s of audio) for
- torch's defaults (torch imported before avdiff: all cores, OpenMP's wait policy),
- avdiff's defaults (avdiff imported first),
- one thread,
on an idle machine and beside `--load` busy processes (pure Python loops). Each setting runs in
its own process, because OpenMP reads its settings when torch loads.

    .venv/bin/python -m benchmarks.speed.cpu_contention --repeats 15 --output benchmarks/results/cpu-contention

OUTPUT/table.md holds the table, OUTPUT/record.json its rows with the run's provenance.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common.paths import REPO_ROOT, default_output

SETTINGS = {
    "torch defaults": {"order": "torch-first", "threads": None},
    "avdiff defaults": {"order": "avdiff-first", "threads": None},
    "one thread": {"order": "avdiff-first", "threads": 1},
}


def measure(order: str, threads: int | None, repeats: int) -> list[float]:
    """Times (s) of `repeats` forward passes after one warm-up, in this process."""
    # Whichever is imported first decides OpenMP's settings: torch alone, or avdiff's defaults.
    importlib.import_module("torch" if order == "torch-first" else "avdiff")
    import torch

    from avdiff.models import ScoreUNet

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    network = ScoreUNet().eval()
    x, noise = torch.randn(1, 2, 256, 384), torch.zeros(1)
    times = []
    with torch.inference_mode():
        network(x, noise)
        for _ in range(repeats):
            start = time.perf_counter()
            network(x, noise)
            times.append(time.perf_counter() - start)
    return times


def run_child(setting: dict, repeats: int) -> dict:
    """Measure one setting in a fresh process (OpenMP settings are read once, at load)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    command = [sys.executable, "-m", __spec__.name, "--child", json.dumps(setting), "--repeats", str(repeats)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    times = json.loads(out.stdout.strip().splitlines()[-1])
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "policy": json.loads(out.stdout.strip().splitlines()[-2])}


LOADS = {
    "python": "while True: pass",  # one core busy, no OpenMP
    "torch": "import torch\nx = torch.randn(384, 384)\nwhile True: x @ x",  # torch's own threads, default settings
}


def busy_processes(count: int, kind: str) -> list[subprocess.Popen]:
    """`count` busy processes of a `LOADS` kind, with the environment torch users have by default."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    return [subprocess.Popen([sys.executable, "-c", LOADS[kind]], env=env) for _ in range(count)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--load", type=int, default=1, help="busy processes beside the measurement")
    parser.add_argument("--load-kinds", nargs="+", choices=sorted(LOADS), default=["python", "torch"],
                        help="what the busy processes run: a pure Python loop, or torch matrix products")
    parser.add_argument("--output", type=Path, default=default_output(__file__),
                        help="folder for table.md and record.json (default: %(default)s)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def child(args: argparse.Namespace) -> None:
    """In the fresh process: the wait policy OpenMP read, then the times, as two JSON lines."""
    setting = json.loads(args.child)
    policy = os.environ.get("OMP_WAIT_POLICY")  # what OpenMP will read when torch loads (before avdiff's default)
    times = measure(setting["order"], setting["threads"], args.repeats)
    print(json.dumps(policy if setting["order"] == "torch-first" else os.environ.get("OMP_WAIT_POLICY")))
    print(json.dumps(times))


def measure_all(args: argparse.Namespace) -> list[dict]:
    """Every setting on an idle machine, then beside --load busy processes of each kind."""
    rows = []
    for load, kind in [(0, "-"), *[(args.load, kind) for kind in args.load_kinds]]:
        for name, setting in SETTINGS.items():
            busy = busy_processes(load, kind) if load else []
            time.sleep(1.0 if busy else 0.0)  # the other jobs are already running when avdiff starts
            try:
                result = run_child(setting, args.repeats)
            finally:
                for process in busy:
                    process.kill()
            rows.append({"setting": name, "busy": f"{load} {kind}" if load else "none", **result})
            print(f"{name:28s} load {rows[-1]['busy']}: median {result['median']:.3f} s "
                  f"(min {result['min']:.3f}, max {result['max']:.3f}; OMP_WAIT_POLICY {result['policy']})", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        child(args)
        return
    from benchmarks.common.record import record

    rows = measure_all(args)
    lines = ["| setting | busy processes | median s | min s | max s |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['setting']} | {r['busy']} | {r['median']:.3f} | {r['min']:.3f} | {r['max']:.3f} |" for r in rows]
    table = "\n".join(lines)
    print(table)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "table.md").write_text(f"{os.cpu_count()} logical CPUs; {args.repeats} passes each\n\n{table}\n")
    record(args.output, args, {"rows": rows})


if __name__ == "__main__":
    main()
