"""Result rows kept as JSONL (resumable benchmarks) and their mean +- 95 % CI summaries and tables.

`grouped_summary` gives the numbers (what `record()` keeps); `grouped_table` renders the same
numbers as the markdown of summary.md and BENCHMARKS.md.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


class Rows:
    """Result rows of one part, appended to a JSONL file as they come (resumable by key)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
        self.done = {row["key"] for row in self.rows}

    def add(self, row: dict) -> None:
        self.rows.append(row)
        self.done.add(row["key"])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")


def mean_ci_values(values: list[float]) -> dict[str, Any]:
    """{"mean", "ci95", "n"} of the 95 % interval (Student's t); mean None for no values."""
    from avdiff.evaluation.statistics import mean_ci95

    stats = mean_ci95(values)
    return {"mean": stats["mean"], "ci95": stats["ci95"], "n": len(values)}


def format_mean_ci(stats: dict[str, Any]) -> str:
    """`mean ± half-width`, or `-` for no values."""
    if stats["mean"] is None:
        return "-"
    ci = stats["ci95"]
    return f"{stats['mean']:.3f}" + (f" ± {ci:.3f}" if ci is not None else "")


def mean_ci(values: list[float]) -> str:
    """`mean ± half-width` of the 95 % interval (Student's t), or `-` for no values."""
    return format_mean_ci(mean_ci_values(values))


def grouped_summary(rows: list[dict], group: tuple[str, ...], metrics: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per combination of the `group` columns: each metric's mean, CI and n, the calls and the row count."""
    keys = sorted({tuple(row[g] for g in group) for row in rows}, key=_natural)
    summary = []
    for key in keys:
        subset = [row for row in rows if tuple(row[g] for g in group) == key]
        entry: dict[str, Any] = dict(zip(group, key))
        for metric in metrics:
            entry[metric] = mean_ci_values([row[metric] for row in subset if metric in row and not math.isnan(row[metric])])
        entry["calls"] = subset[0].get("calls", "-")
        entry["n"] = len(subset)
        summary.append(entry)
    return summary


def grouped_table(rows: list[dict], group: tuple[str, ...], metrics: tuple[str, ...]) -> str:
    """A markdown table of mean ± CI per metric for each combination of the `group` columns."""
    return summary_table(grouped_summary(rows, group, metrics), group, metrics)


def summary_table(summary: list[dict[str, Any]], group: tuple[str, ...], metrics: tuple[str, ...] | None = None) -> str:
    """The markdown table of a `grouped_summary` (metrics: every column that is not a group, calls or n)."""
    if metrics is None:
        metrics = tuple(key for key in (summary[0] if summary else {}) if key not in (*group, "calls", "n"))
    lines = ["| " + " | ".join(group + metrics) + " | calls | n |", "|" + " --- |" * (len(group) + len(metrics) + 2)]
    for entry in summary:
        cells = [format_mean_ci(entry[m]) for m in metrics]
        lines.append("| " + " | ".join(str(entry[g]) for g in group) + " | " + " | ".join(cells)
                     + f" | {entry['calls']} | {entry['n']} |")
    return "\n".join(lines)


def _natural(key: tuple) -> tuple:
    """Sort key: numbers by value, before text (so 4 comes before 12)."""
    return tuple((0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value)) for value in key)
