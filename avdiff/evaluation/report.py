"""Evaluation results and their files: per-file CSV, summary JSON, markdown table."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avdiff import __version__
from avdiff.errors import InputError
from avdiff.evaluation.metrics import METRICS

# Column order of the CSV (metric columns follow METRICS' order; anything else goes last).
_LEADING_COLUMNS = ("system", "id", "reference", "estimate")
_TRAILING_COLUMNS = ("trimmed_ms", "reference_text", "transcript", "errors")


def _format_cell(stats: dict | None, digits: int) -> str:
    if not stats or stats.get("mean") is None:
        return "–"
    mean = stats["mean"]
    text = f"{mean:.{digits}f}"
    if stats.get("ci95") is not None:
        text += f" ± {stats['ci95']:.{digits}f}"
    return text


def markdown_table(systems: dict[str, dict]) -> str:
    """One markdown table: a row per system (its summary: metric -> {"mean", "ci95", "n"}), a column per metric.

    Cells read "mean ± 95 % CI half-width"; "–" where a system lacks the metric. The n column is
    the largest number of files behind any metric of the row.
    """
    keys = [key for key in METRICS if any(key in summary for summary in systems.values())]
    keys += sorted({key for summary in systems.values() for key in summary} - set(keys))
    headings = [METRICS[key].heading if key in METRICS else key for key in keys]
    lines = ["| system | n | " + " | ".join(headings) + " |", "|" + " --- |" * (len(keys) + 2)]
    for name, summary in systems.items():
        n = max((int(stats.get("n", 0)) for stats in summary.values()), default=0)
        cells = [_format_cell(summary.get(key), 3 if key in ("stoi", "estoi", "wer") or key.startswith("slot_") else 2)
                 for key in keys]
        lines.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def metric_reasons(row: dict[str, Any]) -> dict[str, str]:
    """metric -> why it failed, from a row's "errors" ("key: reason; key: reason")."""
    reasons = {}
    for part in str(row.get("errors") or "").split("; "):
        key, _, reason = part.partition(": ")
        if reason:
            reasons[key] = reason
    return reasons


def left_out(row: dict[str, Any]) -> list[tuple[str, str]]:
    """(metric, reason) for every value of `row` that is not finite and so is left out of the means
    (an undefined metric, or SI-SDR +inf for an estimate equal to the reference up to scale)."""
    reasons = metric_reasons(row)
    found = []
    for key in METRICS:
        value = row.get(key)
        if not isinstance(value, float) or math.isfinite(value):
            continue
        if key in reasons:
            reason = reasons[key]
        elif value == math.inf:
            reason = "+inf: the estimate equals the reference up to scale"
        elif value == -math.inf:
            reason = "-inf: the estimate is orthogonal to the reference"
        else:
            reason = "undefined (an input of it is undefined)"
        found.append((key, reason))
    return found


def left_out_values(rows: list[dict[str, Any]]) -> list[str]:
    """"id: metric: reason" for every value of `rows` left out of the means (`left_out`)."""
    return [f"{row['id']}: {key}: {reason}" for row in rows for key, reason in left_out(row)]


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


@dataclass
class EvaluationResult:
    """Per-file rows and summary of one system, with its baselines (e.g. "noisy", "noisereduce").

    rows: one dict per file (id, paths, metric values, NaN where undefined, errors);
    summary: metric -> {"mean", "ci95", "n"} (+ "excluded" when some values were not finite);
    unmatched: {"missing_in_estimate", "extra_in_estimate", "missing_in_noisy"} -> ids;
    unusable: id -> why its files could not be scored at all (unreadable, NaN samples, lengths).
    """

    name: str
    rows: list[dict[str, Any]]
    summary: dict[str, dict]
    unmatched: dict[str, list[str]] = field(default_factory=dict)
    unusable: dict[str, str] = field(default_factory=dict)
    baselines: dict[str, "EvaluationResult"] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def systems(self) -> dict[str, dict]:
        """name -> summary for the baselines, then this system (the order of the table)."""
        return {**{name: result.summary for name, result in self.baselines.items()}, self.name: self.summary}

    def all_rows(self) -> list[dict[str, Any]]:
        rows = [{"system": name, **row} for name, result in self.baselines.items() for row in result.rows]
        return rows + [{"system": self.name, **row} for row in self.rows]

    def to_markdown(self) -> str:
        """The table, then what was left out and why, the notes and the settings."""
        parts = ["# Evaluation\n", "Mean ± 95 % confidence interval (Student's t) over files; ↑ higher is better.\n",
                 markdown_table(self.systems())]
        left_out = {kind: ids for kind, ids in self.unmatched.items() if ids}
        if left_out or self.unusable:
            parts.append("\n## Not evaluated\n")
            for kind, ids in left_out.items():
                parts.append(f"- {kind.replace('_', ' ')} ({len(ids)}): {', '.join(ids)}")
            parts.extend(f"- unusable: {item_id}: {reason}" for item_id, reason in self.unusable.items())
        values = [(name, line) for name, result in {**self.baselines, self.name: self}.items()
                  for line in left_out_values(result.rows)]
        if values:
            parts.append("\n## Left out of the means (not finite)\n")
            parts.extend(f"- {name}: {line}" for name, line in values)
        if self.notes:
            parts.append("\n## Notes\n")
            parts.extend(f"- {note}" for note in self.notes)
        if self.settings:
            parts.append("\n## Settings\n")
            parts.extend(f"- {key}: {value}" for key, value in self.settings.items())
        return "\n".join(parts) + "\n"

    def write(self, output: Path) -> dict[str, Path]:
        """Write `output` (summary JSON), and `output` with .csv (per-file rows) and .md (table) suffixes."""
        output = Path(output)
        if output.suffix.lower() in (".csv", ".md"):
            raise InputError(f"{output}: name the JSON summary (e.g. metrics.json); the .csv and .md go beside it")
        output.parent.mkdir(parents=True, exist_ok=True)
        paths = {"json": output, "csv": output.with_suffix(".csv"), "markdown": output.with_suffix(".md")}
        rows = self.all_rows()
        present = {key for row in rows for key in row}
        columns = [c for c in _LEADING_COLUMNS if c in present]
        columns += [key for key in METRICS if key in present]
        columns += sorted(present - set(columns) - set(_TRAILING_COLUMNS))
        columns += [c for c in _TRAILING_COLUMNS if c in present]
        with paths["csv"].open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({key: ("" if isinstance(v, float) and math.isnan(v) else v)
                                 for key, v in row.items()})
        document = {
            "avdiff_version": __version__,
            "system": self.name,
            "systems": self.systems(),
            "unmatched": self.unmatched,
            "unusable": self.unusable,
            "notes": self.notes,
            "settings": self.settings,
            "files": {"csv": paths["csv"].name, "markdown": paths["markdown"].name},
        }
        paths["json"].write_text(json.dumps(_json_safe(document), indent=2, allow_nan=False) + "\n", encoding="utf-8")
        paths["markdown"].write_text(self.to_markdown(), encoding="utf-8")
        return paths
