"""`avdiff prepare`: a whole corpus, in parallel worker processes, resumable, with a rejects report.

Resuming: items whose id is already in `DATA/manifest.jsonl` are skipped; each finished item
is appended (one fsynced line) as soon as it is done, so an interrupted run loses at most the
items in flight. At the end the manifest is rewritten sorted by id (atomically). One run at a
time per output folder (`folder_lock`): a second one waits, then resumes. Under `accelerate launch`
/ `torchrun` each process prepares its share (`avdiff.processes`) into `manifest.partR.jsonl` and
`rejects.partR.jsonl`, which the main process folds into the manifest and the rejects at the end
(and at the start of the next run, after a kill).
Audio-only items (the speech layouts) need no landmarks; a long recording may give several
pieces (`<id>@00`, ...), all appended together, and a re-run skips a recording once all of its
pieces are in the manifest (`finished_recordings`).
Rejects: every item that cannot be used (decode error, no audio stream, no face, too short,
silent, clipped, NaN, ...) gets one line in `DATA/rejects.jsonl` ({"id", "source", "reason"})
for this run, and the batch carries on. Only a landmark backend that cannot run at all stops the run.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from avdiff.data.manifest import append_manifest, read_manifest, write_manifest
from avdiff.errors import AVDiffError, InputError
from avdiff.landmarks import LandmarkBackendError, LandmarkDetector, create_detector
from avdiff.prepare.audio_item import SEGMENT_SEPARATOR, prepare_audio_item, source_id
from avdiff.prepare.item import prepare_item
from avdiff.prepare.item_files import ITEMS_DIR
from avdiff.prepare.layouts import SourceItem, discover
from avdiff.prepare.settings import PrepareSettings
from avdiff.processes import Processes

MANIFEST_NAME = "manifest.jsonl"
REJECTS_NAME = "rejects.jsonl"
LOCK_NAME = ".avdiff-prepare.lock"


@dataclass
class PrepareReport:
    """What a run did."""

    prepared: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already in the manifest
    rejected: list[dict[str, str]] = field(default_factory=list)  # {"id", "source", "reason"}
    manifest: Path | None = None
    rejects: Path | None = None


# -- per-process state (one detector per worker process, built on first use) -------------------
_SETTINGS: PrepareSettings | None = None
_DETECTOR: LandmarkDetector | None = None


def _init_worker(settings: PrepareSettings, threads: int | None) -> None:
    global _SETTINGS, _DETECTOR
    _SETTINGS, _DETECTOR = settings, None
    if threads:
        import torch

        torch.set_num_threads(threads)


def _detector() -> LandmarkDetector:
    global _DETECTOR
    assert _SETTINGS is not None
    if _DETECTOR is None:
        _DETECTOR = create_detector(_SETTINGS.landmarks, device=_SETTINGS.device, weights=_SETTINGS.landmark_weights)
    return _DETECTOR


def _run_one(item: SourceItem, output_dir: Path) -> tuple[str, list[dict[str, Any]] | str]:
    """("ok", entries) | ("rejected", reason) | ("fatal", message): never raises for a bad input."""
    assert _SETTINGS is not None
    try:
        if item.video is None:
            return "ok", prepare_audio_item(item, output_dir, _SETTINGS)
        return "ok", [prepare_item(item, output_dir, _SETTINGS, _detector())]
    except LandmarkBackendError as error:
        return "fatal", str(error)
    except InputError as error:
        return "rejected", str(error).splitlines()[0]
    except MemoryError:
        return "rejected", f"{item.source}: out of memory while processing (try a smaller --max-side)"
    except Exception as error:  # a bug or an unforeseen library failure: report it, carry on
        return "rejected", f"{item.source}: unexpected {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


def _results(items: list[SourceItem], output_dir: Path, settings: PrepareSettings,
             workers: int) -> Iterator[tuple[SourceItem, str, Any]]:
    if workers <= 1:
        _init_worker(settings, None)
        for item in items:
            yield (item, *_run_one(item, output_dir))
        return
    context = multiprocessing.get_context("spawn")  # no fork after torch/dlib threads exist
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                             initargs=(settings, threads)) as pool:
        futures = {pool.submit(_run_one, item, output_dir): item for item in items}
        try:
            for future in as_completed(futures):
                yield (futures[future], *future.result())
        except BrokenProcessPool as error:
            raise AVDiffError("a prepare worker process died (out of memory or a crash in a native "
                              "library); finished items are saved: re-run the same command to resume") from error
        finally:
            for future in futures:
                future.cancel()


@contextlib.contextmanager
def folder_lock(output_dir: Path, log: Callable[[str], None]) -> Iterator[None]:
    """One prepare at a time per output folder: a second run waits for the first and then resumes
    (skipping what it prepared) instead of appending the same items to the manifest again. `flock`:
    the kernel drops the lock when its holder exits in any way, kill -9 included."""
    with open(output_dir / LOCK_NAME, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"prepare: another prepare run is writing {output_dir}; waiting for it to end")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def finished_recordings(manifest: Path, output_dir: Path, log: Callable[[str], None]) -> set[str]:
    """The ids of the recordings the manifest lists completely. A recording cut into pieces has all
    its pieces' WAVs written before their lines are appended, so a run killed between two of those
    lines leaves WAVs without lines: its lines are dropped (the manifest rewritten) and it is redone."""
    if not manifest.exists():
        return set()
    entries = read_manifest(manifest)
    listed = {entry["id"] for entry in entries}
    torn = set()
    for source in {source_id(item_id) for item_id in listed if SEGMENT_SEPARATOR in item_id}:
        pieces = (output_dir / ITEMS_DIR).glob(f"{glob.escape(source)}{SEGMENT_SEPARATOR}*.wav")
        if any(str(path.relative_to(output_dir / ITEMS_DIR).with_suffix("").as_posix()) not in listed for path in pieces):
            torn.add(source)
    if torn:
        log(f"prepare: {len(torn)} recording(s) with pieces missing from {manifest}, redone: {', '.join(sorted(torn))}")
        write_manifest(manifest, [entry for entry in entries if source_id(entry["id"]) not in torn])
    return {source_id(item_id) for item_id in listed} - torn


def prepare_corpus(layout: str, input_dir: str | Path, output_dir: str | Path,
                   settings: PrepareSettings = PrepareSettings(), workers: int = 1,
                   limit: int | None = None, log: Callable[[str], None] | None = None,
                   progress: bool = False, processes: Processes = Processes()) -> PrepareReport:
    """Prepare every item of `input_dir` (laid out as `layout`) into `output_dir`; under several
    launched processes, each prepares its share into its own part files, merged at the end."""
    log = log or (lambda message: print(message, file=sys.stderr))
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    items = discover(layout, input_dir)
    if limit is not None:
        items = items[:limit]
    with folder_lock(output_dir, log) if processes.is_main else contextlib.nullcontext():
        if processes.is_main:
            merge_parts(output_dir)  # what a killed multi-process run left in its part files
            done = finished_recordings(output_dir / MANIFEST_NAME, output_dir, log)  # drops torn recordings' lines
        processes.barrier()
        if not processes.is_main:  # reads only: the main process left nothing torn to rewrite
            done = finished_recordings(output_dir / MANIFEST_NAME, output_dir, log)
        processes.barrier()  # every process knows what was done before any process adds to it
        part = f".part{processes.rank}" if processes.world > 1 else ""
        report = _prepare_items(items, done, output_dir, settings, workers, log, progress, processes, part)
        reports = processes.gather_reports(output_dir, asdict(report) | {"manifest": None, "rejects": None})
        if processes.is_main and processes.world > 1:
            merge_parts(output_dir)
        merged = PrepareReport(*([entry for r in reports for entry in r[key]] for key in ("prepared", "skipped", "rejected")))
        merged.manifest, merged.rejects = output_dir / MANIFEST_NAME, output_dir / REJECTS_NAME
        return merged


def _prepare_items(items: list[SourceItem], done: set[str], output_dir: Path, settings: PrepareSettings,
                   workers: int, log: Callable[[str], None], progress: bool, processes: Processes,
                   part: str) -> PrepareReport:
    """prepare_corpus's work on this process's share, into `manifest{part}.jsonl` / `rejects{part}.jsonl`."""
    manifest = output_dir / MANIFEST_NAME.replace(".jsonl", f"{part}.jsonl")
    report = PrepareReport(manifest=manifest, rejects=output_dir / REJECTS_NAME.replace(".jsonl", f"{part}.jsonl"))
    report.skipped = processes.share([item.id for item in items if item.id in done])
    todo = processes.share([item for item in items if item.id not in done])
    if report.skipped:
        log(f"prepare: {len(report.skipped)} item(s) already in {output_dir / MANIFEST_NAME}, skipped")
    generator = _results(todo, output_dir, settings, workers)
    results: Any = generator
    if progress:
        from tqdm import tqdm

        results = tqdm(results, total=len(todo), desc="prepare", unit="clip", file=sys.stderr)
    try:
        with open(report.rejects, "w", encoding="utf-8") as rejects_file:
            for item, status, payload in results:
                if status == "fatal":
                    raise LandmarkBackendError(payload)
                if status == "ok":
                    append_manifest(manifest, payload)
                    report.prepared.append(item.id)
                    continue
                reject = {"id": item.id, "source": str(item.source), "reason": payload}
                rejects_file.write(json.dumps(reject, ensure_ascii=False) + "\n")
                rejects_file.flush()
                report.rejected.append(reject)
                log(f"prepare: rejected {item.id}: {payload}")
    finally:
        generator.close()  # stops the worker pool now, also when a fatal error propagates
    if manifest.exists() and not part:
        write_manifest(manifest, sorted(read_manifest(manifest), key=lambda entry: entry["id"]))
    return report


def merge_parts(output_dir: Path) -> None:
    """Fold the part files of a multi-process run (`manifest.partR.jsonl`, `rejects.partR.jsonl`) into
    `manifest.jsonl` (sorted by id, an id once) and `rejects.jsonl`, then remove them."""
    manifest_parts = sorted(output_dir.glob(MANIFEST_NAME.replace(".jsonl", ".part*.jsonl")))
    reject_parts = sorted(output_dir.glob(REJECTS_NAME.replace(".jsonl", ".part*.jsonl")))
    if manifest_parts:
        manifest = output_dir / MANIFEST_NAME
        entries = {}
        for path in ([manifest] if manifest.exists() else []) + manifest_parts:
            for entry in read_manifest(path):
                entries.setdefault(entry["id"], entry)
        write_manifest(manifest, [entries[key] for key in sorted(entries)])
    if reject_parts:
        lines = "".join(path.read_text(encoding="utf-8") for path in reject_parts)
        (output_dir / REJECTS_NAME).write_text(lines, encoding="utf-8")
    for path in manifest_parts + reject_parts:
        path.unlink()
