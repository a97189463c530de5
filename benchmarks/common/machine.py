"""The machine a benchmark ran on: `avdiff env`'s machine and device facts, plus what a speed figure
also needs (the cores this process may use, memory, load).

Speed figures mean nothing without it, and the machines this project runs on differ (CPU model,
bf16 or not, how many cores another job is using); `record()` writes it beside every result. The
CPU model, native bf16, GPUs, torch threads and OpenMP settings come from `avdiff.environment`
(what `avdiff env` prints), so they are read one way everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

MEMINFO = Path("/proc/meminfo")


def memory_gib(meminfo: Path = MEMINFO) -> float | None:
    """Total memory in GiB from /proc/meminfo, or None where it cannot be read."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def usable_cores() -> int:
    """Cores this process may run on (its affinity), which can be fewer than the machine has."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def describe_machine() -> dict[str, Any]:
    """CPU model, cores, native bf16 (avx512_bf16 / amx_bf16), memory, load, CUDA and GPUs, torch
    threads and OpenMP settings."""
    from avdiff.environment import device_and_threads, machine

    return {**machine(), "usable_cores": usable_cores(), "memory_gib": memory_gib(),
            "load_average_1min": round(os.getloadavg()[0], 2), **device_and_threads()}
