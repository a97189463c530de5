"""Result rows kept as JSONL (resumable benchmarks) and their mean +- 95 % CI tables.

Imported by the benchmark scripts of this folder (run as `python benchmarks/NAME.py`, so this
folder is on the import path).
"""

from __future__ import annotations

import json
import math
from pathlib import Path


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


def mean_ci(values: list[float]) -> str:
    """`mean ± half-width` of the 95 % interval (Student's t), or `-` for no values."""
    from avdiff.evaluation.statistics import mean_ci95

    stats = mean_ci95(values)
    if stats["mean"] is None:
        return "-"
    ci = stats["ci95"]
    return f"{stats['mean']:.3f}" + (f" ± {ci:.3f}" if ci is not None else "")


def grouped_table(rows: list[dict], group: tuple[str, ...], metrics: tuple[str, ...]) -> str:
    """A markdown table of mean ± CI per metric for each combination of the `group` columns."""
    keys = sorted({tuple(row[g] for g in group) for row in rows}, key=_natural)
    lines = ["| " + " | ".join(group + metrics) + " | calls | n |", "|" + " --- |" * (len(group) + len(metrics) + 2)]
    for key in keys:
        subset = [row for row in rows if tuple(row[g] for g in group) == key]
        cells = [mean_ci([row[m] for row in subset if m in row and not math.isnan(row[m])]) for m in metrics]
        calls = subset[0].get("calls", "-")
        lines.append("| " + " | ".join(str(k) for k in key) + " | " + " | ".join(cells) + f" | {calls} | {len(subset)} |")
    return "\n".join(lines)


def _natural(key: tuple) -> tuple:
    """Sort key: numbers by value, before text (so 4 comes before 12)."""
    return tuple((0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value)) for value in key)
