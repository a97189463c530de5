"""The machine a benchmark ran on: CPU model, cores, native bf16, memory, load, GPU and threads.

Speed figures mean nothing without it, and the machines this project runs on differ (CPU model,
bf16 or not, how many cores another job is using); `record()` writes it beside every result.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CPUINFO = Path("/proc/cpuinfo")
MEMINFO = Path("/proc/meminfo")


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The first `model name` of /proc/cpuinfo (platform.processor() is often empty on Linux)."""
    import platform

    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


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


def gpus() -> list[str]:
    """Names of the CUDA devices torch sees (none on a CPU machine)."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]


def describe_machine() -> dict[str, Any]:
    """Everything above, with the number of threads torch uses."""
    import torch

    from avdiff.cpu import cpu_has_native_bf16  # the flags the pipeline itself reads to choose bf16

    return {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "native_bf16": cpu_has_native_bf16(),
        "memory_gib": memory_gib(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "gpus": gpus(),
        "torch_threads": torch.get_num_threads(),
    }
