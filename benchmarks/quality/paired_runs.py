"""Paired differences between a system of one benchmark run and a system of another, clip by clip.

Two runs of a resumable quality benchmark (`lips_matter.py`, `enhance_real.py`, ... : rows.jsonl
with `system`, `item` and the metrics) on the same clips and mixtures, e.g. one method's
audio-visual system and another setting's audio-only system: the per-clip differences A - B of
each metric, grouped by the fields the rows share (noise and SNR), with 95 % intervals.

    .venv/bin/python -m benchmarks.quality.paired_runs --a runs/lips "audio-visual" \\
        --b runs/ao-lambda "audio-only" --output benchmarks/results/paired
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.common.record import record
from benchmarks.common.rows import format_mean_ci, mean_ci_values

GROUPS = ("noise", "snr")  # the fields a row is paired within, beside the clip
METRICS = ("si_sdr", "pesq_wb", "estoi", "wer_grid")


def system_rows(folder: Path, system: str) -> dict[tuple, dict]:
    """(noise, snr, item) -> the row of `system` in FOLDER/rows.jsonl; `NAME|field=value` keeps only
    the rows of NAME with that value (a run with several budgets: `dpmpp_2m|budget=8`)."""
    name, _, where = system.partition("|")
    field, _, value = where.partition("=")
    rows = [json.loads(line) for line in (folder / "rows.jsonl").read_text().splitlines()]
    return {tuple(row.get(k) for k in (*GROUPS, "item")): row for row in rows
            if row.get("system") == name and (not field or str(row.get(field)) == value)}


def paired_differences(a: dict[tuple, dict], b: dict[tuple, dict], metrics: tuple[str, ...]) -> list[dict]:
    """Per group of GROUPS: mean, 95 % interval and count of a - b over the clips both have."""
    groups = sorted({key[:-1] for key in a if key in b}, key=str)
    return [{**dict(zip(GROUPS, group)), **{m: mean_ci_values(
        [a[key][m] - b[key][m] for key in a if key[:-1] == group and key in b and m in a[key] and m in b[key]])
        for m in metrics}} for group in groups]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", nargs=2, required=True, metavar=("RUN", "SYSTEM"), help="run folder and system: A")
    parser.add_argument("--b", nargs=2, required=True, metavar=("RUN", "SYSTEM"), help="run folder and system: B")
    parser.add_argument("--metrics", nargs="+", default=list(METRICS))
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    a, b = system_rows(Path(args.a[0]), args.a[1]), system_rows(Path(args.b[0]), args.b[1])
    if not any(key in b for key in a):
        raise SystemExit(f"no clip of {args.a} is also in {args.b}")
    differences = paired_differences(a, b, tuple(args.metrics))
    record(args.output, args, {"a": args.a, "b": args.b, "differences": differences})
    header = "| " + " | ".join(GROUPS) + " | " + " | ".join(f"Δ {m}" for m in args.metrics) + " |"
    print(f"{args.a[1]} ({args.a[0]}) - {args.b[1]} ({args.b[0]}):\n\n{header}\n|" + " --- |" * (len(GROUPS) + len(args.metrics)))
    for entry in differences:
        print("| " + " | ".join(f"{entry[g]}" for g in GROUPS) + " | "
              + " | ".join(format_mean_ci(entry[m]) for m in args.metrics) + " |")


if __name__ == "__main__":
    main()
