"""A learning curve from `lips_matter` runs of a training run's checkpoints: WER and ESTOI against
the training minutes each checkpoint had cost (read off the run's train.log), in one figure and
one record.

    .venv/bin/python -m benchmarks.quality.learning_curve --system "lips w=2" \
        --point runs/eval-score32-250:107.7 --point runs/eval-score32-500:116.5 ... \
        --output benchmarks/results/v2s-learning-curve --figure benchmarks/figures/v2s_learning_curve.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.common.record import record
from benchmarks.common.rows import mean_ci_values

METRICS = ("wer_grid", "estoi", "slot_letter", "slot_digit")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--point", action="append", required=True, metavar="RUN:MINUTES",
                        help="a lips_matter output folder and the training minutes of the checkpoint it scored")
    parser.add_argument("--system", default="lips w=2", help="the system of the runs to plot")
    parser.add_argument("--masked", default="faces masked", help="the control system, plotted beside it")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--figure", type=Path, required=True)
    return parser.parse_args(argv)


def point(spec: str, systems: tuple[str, str]) -> dict:
    """The means and 95 % intervals of one run's rows for the system and its control."""
    folder, _, minutes = spec.rpartition(":")
    rows = [json.loads(line) for line in (Path(folder) / "rows.jsonl").read_text().splitlines() if line.strip()]
    out: dict = {"run": folder, "minutes": float(minutes)}
    for name in systems:
        chosen = [row for row in rows if row.get("system") == name]
        out[name] = {m: mean_ci_values([row[m] for row in chosen if m in row]) for m in METRICS}
    return out


def plot(points: list[dict], systems: tuple[str, str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    minutes = [p["minutes"] for p in points]
    for axis, metric, label in zip(axes, ("wer_grid", "estoi"), ("GRID-grammar WER", "ESTOI")):
        for name in systems:
            means = [p[name][metric]["mean"] for p in points]
            errors = [p[name][metric]["ci95"] or 0.0 for p in points]
            axis.errorbar(minutes, means, yerr=errors, marker="o", capsize=3, label=name)
        axis.set(xlabel="training minutes (2 CPU cores, both stages)", ylabel=label)
        axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    systems = (args.system, args.masked)
    points = sorted((point(spec, systems) for spec in args.point), key=lambda p: p["minutes"])
    plot(points, systems, args.figure)
    lines = ["| minutes | " + " | ".join(METRICS) + " | masked WER |", "|" + " --- |" * (len(METRICS) + 2)]
    for p in points:
        cells = [f"{p[args.system][m]['mean']:.3f} ± {p[args.system][m]['ci95'] or 0:.3f}" for m in METRICS]
        lines.append(f"| {p['minutes']:.0f} | " + " | ".join(cells) + f" | {p[args.masked]['wer_grid']['mean']:.3f} |")
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "summary.md").write_text("\n".join(lines) + "\n")
    record(args.output, args, points)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
