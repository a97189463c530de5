"""One training per run folder: an exclusive lock that a crashed or killed run cannot leave stuck.

Two trainings writing one folder used to both finish, each checkpoint and the exported model
being the second run's. The lock is `flock` on OUTPUT/.avdiff-train.lock, held by the run's
first process (global rank 0, so several nodes sharing a file system take it once) from start
to end; the kernel drops it when that process exits in any way, kill -9 included, so there is
no stale lock to clean up. The file says who holds it.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from avdiff.errors import InputError

LOCK_NAME = ".avdiff-train.lock"


class RunLock:
    """`with RunLock(folder):` holds the folder's training lock, or raises InputError if another holds it."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.handle: IO[str] | None = None

    def __enter__(self) -> "RunLock":
        if int(os.environ.get("RANK", "0")) != 0:
            return self  # other processes of the same run
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = open(self.folder / LOCK_NAME, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise InputError(f"{self.folder}: another training is running in this folder ({holder}); wait for it "
                             "to end, stop it, or train into another --output-dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        self.handle = handle
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None
