"""The markdown table of `benchmarks/speed/gpu_suite.sh`: one row per measured figure, then notes.

Reads OUTPUT_DIR/steps.tsv (one line per step the suite ran or skipped: name, kind, model,
mode, status, exit code, seconds, budget), each step's OUTPUT_DIR/<step>/record.json (written
by sampling_speed.py and pipeline_speed.py), the TensorBoard event files of the training run
(`train/samples_per_s`, median of the windows logged after `--warmup-steps`), the step logs in
OUTPUT_DIR/logs (the error of a failed step) and OUTPUT_DIR/notes.txt (the suite's own notes).
Prints the table and writes it to OUTPUT_DIR/table.md, and its rows and notes with the run's provenance to
OUTPUT_DIR/record.json.

    .venv/bin/python -m benchmarks.speed.gpu_suite_table benchmarks/results/gpu-suite --machine "NVIDIA H200, torch 2.11"
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common.record import RECORD_NAME, read_record, record

COLUMNS = ("measurement", "model", "mode", "job", "batch", "calls", "median s", "RTF", "throughput", "target")
GENERATE_TARGET = "RTF <= 0.02 (video-to-speech, batched)"
ENHANCE_TARGET = "RTF <= 0.05 (AV enhancement)"
TRAIN_TARGET = ">= 50 samples/s (bf16, batch 16)"
SAMPLES_TAG = "train/samples_per_s"
MEMORY_TAG = "train/gpu_memory_gib"


@dataclass
class Step:
    """One line of steps.tsv: a step of the suite and how it ended."""

    name: str
    kind: str
    model: str
    mode: str
    status: str
    rc: int
    seconds: float
    budget: int
    out: Path

    @property
    def folder(self) -> Path:
        """The step's output folder (record.json, or the training run)."""
        return self.out / self.name

    @property
    def log(self) -> Path:
        """The step's stdout and stderr."""
        return self.out / "logs" / f"{self.name}.log"

    def results(self) -> dict | None:
        """The results of the step's record.json, or None when it wrote none."""
        path = self.folder / RECORD_NAME
        if not path.is_file():
            return None
        try:
            return read_record(path)["results"]
        except (json.JSONDecodeError, KeyError):
            return None


def read_steps(out: Path) -> list[Step]:
    """The steps recorded in OUT/steps.tsv, in the order they ran."""
    path = out / "steps.tsv"
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    return [Step(name, kind, model, mode, status, int(rc), float(seconds), int(budget), out)
            for name, kind, model, mode, status, rc, seconds, budget in rows]


def sampling_rows(step: Step) -> list[list[str]]:
    """Rows of a sampling_speed.py step: one per batch size."""
    summary = step.results()
    if summary is None:
        return []
    dtype = summary.get("dtype", "")
    rows = []
    for r in summary["results"]:
        calls = r["network_calls"]
        rtf = f"{r['rtf']:.4f} ({r['rtf'] * 60 / calls:.4f} at 60 calls)"
        target = GENERATE_TARGET + ", at 60 calls" if r["batch"] >= 16 else ""
        rows.append(["sampling (network, random weights)", step.model, f"{r['mode']} {dtype}",
                     "PC sampler + iSTFT, 2.04 s", str(r["batch"]), str(calls), f"{r['median_s']:.3f}",
                     rtf, f"{r['calls_per_s']:.1f} calls/s", target])
    return rows


def pipeline_rows(step: Step) -> list[list[str]]:
    """Rows of a pipeline_speed.py step: one per job (generate or an enhancement method)."""
    summary = step.results()
    if summary is None:
        return []
    rows = []
    for r in summary["rows"]:
        job = r["method"]
        target = GENERATE_TARGET if job.startswith("generate") else ENHANCE_TARGET
        measurement = "pipeline generate" if job.startswith("generate") else "pipeline enhance (audio-visual)"
        batch = job.split("num_samples=")[1].split(",")[0] if "num_samples=" in job else "1"
        rows.append([measurement, step.model, step.mode, f"{job}, {r['seconds_audio']:.2f} s of audio made", batch,
                     str(r["network_calls"]), f"{r['median_s']:.3f}", f"{r['rtf']:.4f}", "", target])
    return rows


def train_scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of a scalar over every TensorBoard event file under `run_dir`, by step."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    values: dict[int, float] = {}
    for path in sorted(run_dir.rglob("events.out.tfevents*")):
        accumulator = EventAccumulator(str(path), size_guidance={"scalars": 0})
        accumulator.Reload()
        if tag in accumulator.Tags().get("scalars", []):
            values.update({event.step: event.value for event in accumulator.Scalars(tag)})
    return sorted(values.items())


def train_rows(step: Step, warmup_steps: int, notes: list[str]) -> list[list[str]]:
    """The training row: median samples/s of the windows logged after `warmup_steps`."""
    if not step.folder.is_dir():
        return []
    try:
        speeds = train_scalars(step.folder, SAMPLES_TAG)
        memory = train_scalars(step.folder, MEMORY_TAG)
    except Exception as error:  # a missing or broken tensorboard install: say so, keep the table
        notes.append(f"`{step.name}`: could not read the TensorBoard logs ({type(error).__name__}: {error})")
        return []
    if not speeds:
        return []
    after = [value for logged_step, value in speeds if logged_step > warmup_steps]
    if not after:
        notes.append(f"`{step.name}`: no samples/s logged after step {warmup_steps}; the median is over every window")
        after = [value for _, value in speeds]
    config = Path(step.model).stem
    batch = train_batch(step.folder)
    throughput = f"{statistics.median(after):.1f} samples/s"
    if memory:
        throughput += f" (peak {max(v for _, v in memory):.1f} GiB)"
    median_s = f"{batch / statistics.median(after):.3f} per step" if batch else ""
    return [["training", config, step.mode, f"steps {speeds[0][0]}-{speeds[-1][0]}, median of {len(after)} windows",
             str(batch or ""), "", median_s, "", throughput, TRAIN_TARGET]]


def train_batch(run_dir: Path) -> int | None:
    """training.batch_size of the run's resolved config.yaml, if it is there."""
    import yaml

    path = run_dir / "config.yaml"
    if not path.is_file():
        return None
    config = yaml.safe_load(path.read_text()) or {}
    return config.get("training", {}).get("batch_size")


def step_note(step: Step) -> str | None:
    """A note for a step that did not end well: why, with the end of its log."""
    if step.status == "ok":
        return None
    if step.status.startswith("skipped"):
        return f"`{step.name}`: {step.status}"
    what = (f"timed out after {step.seconds:.0f} s (its budget)" if step.status == "timeout"
            else f"failed (exit {step.rc}) after {step.seconds:.0f} s")
    return f"`{step.name}`: {what}; log {step.log}: {log_tail(step.log)}"


def log_tail(path: Path, lines: int = 3, chars: int = 400) -> str:
    """The last non-empty lines of a log, on one line, shortened to `chars`."""
    if not path.is_file():
        return "(no log)"
    text = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    tail = " / ".join(text[-lines:]) or "(empty log)"
    return tail if len(tail) <= chars else "..." + tail[-chars:]


def table_rows(steps: list[Step], warmup_steps: int, notes: list[str]) -> list[list[str]]:
    """Every row of the table, in the order the steps ran; notes for steps that gave no figure."""
    rows: list[list[str]] = []
    readers = {"sampling": sampling_rows, "pipeline": pipeline_rows}
    for step in steps:
        if step.kind == "train":
            found = train_rows(step, warmup_steps, notes)
        else:
            found = readers[step.kind](step) if step.kind in readers else []
        rows += found
        note = step_note(step)
        if note:
            notes.append(note)
        elif not found and (step.kind in readers or step.kind == "train"):
            notes.append(f"`{step.name}`: finished but left no figures in {step.folder}")
    return rows


def render(machine: str, rows: list[list[str]], notes: list[str], steps: list[Step]) -> str:
    """The markdown: header line, table, notes and the time each step took."""
    lines = [f"**GPU suite** - {machine}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    if not rows:
        lines.append("| (no figures) |" + " |" * (len(COLUMNS) - 1))
    lines += ["", "Notes:"]
    lines += [f"- {note}" for note in notes]
    timing = ", ".join(f"{s.name} {s.seconds:.0f}/{s.budget} s" for s in steps if not s.status.startswith("skipped"))
    lines.append(f"- step times (used/budget): {timing or 'none'}; total {sum(s.seconds for s in steps):.0f} s")
    return "\n".join(lines) + "\n"


def standing_notes(out: Path) -> list[str]:
    """The suite's notes (OUT/notes.txt) and what every table needs said."""
    notes = ["sampling rows: random weights and lip condition, 2.04 s per item, RTF per item of the batch "
             "(batch items count as audio); the figure in brackets scales it to the 60 calls of v2s's sampler",
             "pipeline rows: one input clip; generate:num_samples=16 makes 16 samples of it in one batch (the "
             "batched video-to-speech figure, RTF per second of audio made)",
             "training: eager (the trainer does not compile); samples/s is the trainer's logged window rate"]
    path = out / "notes.txt"
    if path.is_file():
        notes += [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return notes


def main() -> None:
    """Build, print and save the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path, help="the suite's output folder")
    parser.add_argument("--machine", default="unknown machine", help="the header line's machine description")
    parser.add_argument("--warmup-steps", type=int, default=20, help="training steps left out of the median")
    args = parser.parse_args()
    steps = read_steps(args.output)
    failures: list[str] = []
    rows = table_rows(steps, args.warmup_steps, failures)
    notes = failures + standing_notes(args.output)
    text = render(args.machine, rows, notes, steps)
    (args.output / "table.md").write_text(text)
    record(args.output, args, {"machine_line": args.machine, "columns": COLUMNS, "rows": rows, "notes": notes})
    print(text, end="")


if __name__ == "__main__":
    main()
