"""Batch jobs over files, folders or manifests: resumable, and a bad item never stops the batch.

Outputs are written to a temporary name and renamed, so an output that exists is complete and
a re-run skips it; an item that fails is reported (stderr and `failures.jsonl` beside the
outputs) and the batch carries on.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from avdiff.errors import AVDiffError



@dataclass
class BatchItem:
    """One unit of work: an id, its inputs and where its output goes."""

    id: str
    output: Path
    inputs: dict = field(default_factory=dict)


@dataclass
class BatchReport:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.done)} written, {len(self.skipped)} already there (skipped), {len(self.failed)} failed"


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit PCM atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.wav")
    sf.write(str(tmp), np.clip(audio, -1.0, 32767 / 32768), sample_rate, subtype="PCM_16")
    os.replace(tmp, path)


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


def run_batch(items: Iterable[BatchItem], process: Callable[[BatchItem], None], report_dir: Path | None,
              overwrite: bool = False) -> BatchReport:
    """Run `process` on every item whose output does not exist yet; collect failures."""
    report = BatchReport()
    for item in items:
        if item.output.exists() and not overwrite:
            report.skipped.append(item.id)
            continue
        try:
            process(item)
        except (AVDiffError, OSError, ValueError, RuntimeError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            print(f"failed: {item.id}: {reason}", file=sys.stderr)
            report.failed.append({"id": item.id, "reason": reason})
            continue
        report.done.append(item.id)
    if report_dir is not None and report.failed:
        report_dir.mkdir(parents=True, exist_ok=True)
        with open(report_dir / "failures.jsonl", "a", encoding="utf-8") as handle:
            for failure in report.failed:
                handle.write(json.dumps(failure) + "\n")
    return report
