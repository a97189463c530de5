"""Batch commands over several processes: `accelerate launch -m avdiff generate|enhance|prepare ...`
(or `torchrun ... -m avdiff ...`), on GPUs or machines.

Every process lists the same items in the same order and takes every `world`-th one from its
rank (`share`), so no two processes write the same output and each share resumes like a single
run. Each process writes what it did to a small JSON file; at the end they meet (`barrier`) and
every process reads all of them (`gather_reports`), so the merged report and the exit code are
the same everywhere and the main process alone prints and writes them. Reports are JSON, not
pickles exchanged over the process group. Without a launcher (`WORLD_SIZE` unset or 1) there is
one process and nothing changes: no process group, no files.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from avdiff.errors import AVDiffError

T = TypeVar("T")
REPORT_PREFIX = ".avdiff-report-rank"


@dataclass(frozen=True)
class Processes:
    """This process's place among the launched ones."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, items: Sequence[T]) -> list[T]:
        """This process's items: every world-th from its rank (round robin, so shares differ by one at most)."""
        return list(items[self.rank::self.world])

    def device(self, requested: str | None) -> str | None:
        """The device to run on: a plain `cuda` becomes this process's GPU (cuda:LOCAL_RANK)."""
        if self.world > 1 and requested in (None, "cuda"):
            import torch

            if requested == "cuda" or torch.cuda.is_available():
                return f"cuda:{self.local_rank}"
        return requested

    def barrier(self) -> None:
        """Wait until every process gets here."""
        if self.world > 1:
            from accelerate import PartialState

            PartialState().wait_for_everyone()

    def gather_reports(self, folder: Path, report: dict[str, Any]) -> list[dict[str, Any]]:
        """Every process's `report` (JSON-able), in rank order; the files are removed afterwards."""
        if self.world == 1:
            return [report]
        folder.mkdir(parents=True, exist_ok=True)
        path = report_path(folder, self.rank)
        tmp = path.with_name(f"{path.name}.tmp")
        tmp.write_text(json.dumps(report) + "\n")
        os.replace(tmp, path)
        self.barrier()
        reports = [json.loads(report_path(folder, rank).read_text()) for rank in range(self.world)]
        self.barrier()  # everyone has read them
        path.unlink(missing_ok=True)
        return reports


def report_path(folder: Path, rank: int) -> Path:
    return folder / f"{REPORT_PREFIX}{rank}.json"


def launched_processes() -> Processes:
    """This process's rank and the number of processes, from the launcher's environment; joins the
    process group it set up (gloo on CPUs, NCCL on GPUs) through Accelerate."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Processes()
    # Several processes share one stdout: one write per line (atomic on a pipe), so their lines
    # never break into each other as block-buffered chunks do.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())  # without cpu=True, CPU processes stay apart
    if state.num_processes <= 1:
        raise AVDiffError(f"WORLD_SIZE is {os.environ['WORLD_SIZE']} but Accelerate joined no process group")
    return Processes(state.process_index, state.num_processes, state.local_process_index)
