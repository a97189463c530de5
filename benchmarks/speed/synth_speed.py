"""How fast `avdiff synth` makes a corpus: utterances per second, wall clock, with N workers.

Runs the real command path (`synthesize_corpus`: espeak-ng, resampling, coarticulation,
rendering, file writing, manifests) into a fresh folder and reports the wall-clock time,
utterances/s, minutes of audio made and the real-time factor (seconds of compute per second
of audio). Process start-up (spawning workers, importing torch) is included: it is what a
user waits for.

Example (the figure in BENCHMARKS.md; issue 4 asks for 1000 utterances in <= 3 min on 2 cores):
    .venv/bin/python -m benchmarks.speed.synth_speed --num-utterances 1000 --workers 2 \
        --output benchmarks/results/synth-speed

OUTPUT/record.json holds the figures with the run's provenance, OUTPUT/results.md the table row.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from avdiff.synth.corpus import SynthSettings, synthesize_corpus
from benchmarks.common.paths import default_output
from benchmarks.common.record import record


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-utterances", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=default_output(__file__),
                        help="folder for record.json and results.md (default: %(default)s)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the corpus in this (new) folder")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    target = args.keep or Path(tempfile.mkdtemp(prefix="avdiff-synth-speed-")) / "data"
    settings = SynthSettings(num_utterances=args.num_utterances, seed=args.seed)
    start = time.perf_counter()
    cpu_start = os.times()
    report = synthesize_corpus(target, settings, workers=args.workers)
    wall = time.perf_counter() - start
    cpu_end = os.times()
    cpu = (cpu_end.user + cpu_end.system + cpu_end.children_user + cpu_end.children_system
           - cpu_start.user - cpu_start.system - cpu_start.children_user - cpu_start.children_system)
    audio_s = report.hours * 3600
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    result = {
        "num_utterances": args.num_utterances, "workers": args.workers, "wall_s": round(wall, 2),
        "utterances_per_s": round(args.num_utterances / wall, 2), "audio_minutes": round(audio_s / 60, 2),
        "cpu_s": round(cpu, 1), "rtf_cpu": round(cpu / audio_s, 4), "corpus_mib": round(size / 2**20, 1),
    }  # the record adds the machine, its load average at the end included
    print(f"{args.num_utterances} utterances ({result['audio_minutes']} min of audio, {result['corpus_mib']} MiB) "
          f"with {args.workers} workers in {wall:.1f} s: {result['utterances_per_s']} utterances/s; "
          f"CPU {cpu:.0f} s (RTF {result['rtf_cpu']}); load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs")
    record(args.output, args, result)
    (args.output / "results.md").write_text(
        "| utterances | workers | wall (s) | utterances/s | audio (min) | CPU s per audio s |\n|---|---|---|---|---|---|\n"
        f"| {args.num_utterances} | {args.workers} | {result['wall_s']} | {result['utterances_per_s']} | "
        f"{result['audio_minutes']} | {result['rtf_cpu']} |\n")
    if args.keep is None:
        shutil.rmtree(target.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
