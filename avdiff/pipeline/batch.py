"""Batch jobs over files, folders or manifests: resumable, and a bad item never stops the batch.

Outputs are written to a temporary name (unique to the process) and renamed, so an output that
exists is complete and a re-run skips it; an item that fails, for whatever reason, is reported
in one line naming its input (stderr and `failures.jsonl` beside the outputs, this run's
failures) and the batch carries on. Only a problem that no item can get past (a landmark
backend that cannot run) stops the batch. Under `accelerate launch` / `torchrun` each process
does its share of the items and the report is merged (`avdiff.processes`).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path


from avdiff.errors import AVDiffError
from avdiff.landmarks.base import LandmarkBackendError
from avdiff.processes import Processes


@dataclass
class BatchItem:
    """One unit of work: an id, its inputs and where its output goes; `source` is the input file
    that failure lines name."""

    id: str
    output: Path
    inputs: dict = field(default_factory=dict)
    source: Path | None = None


@dataclass
class BatchReport:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.done)} written, {len(self.skipped)} already there (skipped), {len(self.failed)} failed"

    @classmethod
    def merged(cls, reports: list[dict]) -> "BatchReport":
        """One report from several processes' (as dicts, in rank order)."""
        return cls(*([entry for report in reports for entry in report[key]] for key in ("done", "skipped", "failed")))


def files_in(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files with one of `suffixes` anywhere below `folder`, sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def item_names(files: list[Path], folder: Path) -> list[str]:
    """A distinct name per input (its path below `folder` without the suffix), used for its id and
    output; inputs that would share one (`a.wav` and `a.flac`) keep their suffix (`a_wav`, `a_flac`)
    instead of overwriting or skipping each other."""
    plain = [str(p.relative_to(folder).with_suffix("")) for p in files]
    counts = Counter(plain)
    return [name if counts[name] == 1 else f"{name}_{p.suffix.lstrip('.').lower()}" for name, p in zip(plain, files)]


def failure_reason(error: Exception, source: Path | None) -> str:
    """One line: the error's first line, with the input file named in front when the message does
    not name it, and the exception type when it is not one of avdiff's (an unforeseen failure)."""
    message = str(error).splitlines()[0] if str(error).strip() else ""
    if not isinstance(error, AVDiffError):
        message = f"unexpected {type(error).__name__}" + (f": {message}" if message else "")
    if source is not None and str(source) not in message:
        message = f"{source}: {message}"
    return message or type(error).__name__


def run_batch(items: Iterable[BatchItem], process: Callable[[BatchItem], None], report_dir: Path | None,
              overwrite: bool = False, processes: Processes = Processes()) -> BatchReport:
    """Run `process` on every item (of this process's share) whose output does not exist yet; any
    exception of one item is that item's failure (see the module docstring). Returns the report of
    all processes."""
    report = BatchReport()
    for item in processes.share(list(items)):
        if item.output.exists() and not overwrite:
            report.skipped.append(item.id)
            continue
        try:
            process(item)
        except LandmarkBackendError:
            raise  # no item could get past it
        except Exception as error:  # noqa: BLE001 - one bad item never stops the batch
            reason = failure_reason(error, item.source)
            print(f"failed: {item.id}: {reason}", file=sys.stderr)
            report.failed.append({"id": item.id, "reason": reason})
            continue
        report.done.append(item.id)
    report = BatchReport.merged(processes.gather_reports(report_dir or Path.cwd(), asdict(report)))
    if report_dir is not None and processes.is_main:
        _write_failures(report_dir / "failures.jsonl", report.failed)
    return report


def _write_failures(path: Path, failed: list[dict]) -> None:
    """This run's failures (an earlier run's list is replaced; none: the file is removed)."""
    if not failed:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for failure in failed:
            handle.write(json.dumps(failure, ensure_ascii=False) + "\n")
