"""One run of a job under torch.profiler: where a one-clip job's time goes on a GPU.

A job bound by launching kernels shows many launches and a GPU busy for a small share of the
wall time; one bound by host-device traffic shows copies and synchronisations (each sync stops
the host from queueing work ahead of the GPU). `profile_run` writes the profiler's table of the
heaviest operations and returns those counts for a benchmark's record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity

LAUNCHES = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx")


def _gpu_counts(events) -> dict[str, float]:
    """Kernel launches, CUDA-graph replays, copies, syncs and the summed kernel time of `events`."""
    counts = {event.key: event.count for event in events}
    kernel_us = sum(event.self_device_time_total for event in events if event.device_type == DeviceType.CUDA)
    return {"kernel_launches": sum(counts.get(name, 0) for name in LAUNCHES),
            "graph_launches": counts.get("cudaGraphLaunch", 0),
            "memcpy_calls": sum(count for key, count in counts.items() if key.startswith("cudaMemcpy")),
            "syncs": sum(count for key, count in counts.items() if "Synchronize" in key),
            "gpu_busy_s": round(kernel_us / 1e6, 4)}


def profile_run(run: Callable[[], object], device: str, table_path: Path) -> dict[str, float]:
    """Run `run` once under the profiler; write the 40 heaviest operations (by device time on a
    GPU, host time on a CPU) to `table_path`; return wall seconds, aten operations and, on a
    GPU, `_gpu_counts` with the GPU's busy share of the wall time."""
    cuda = device == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.profiler.profile(activities=activities) as profiler:
        run()
        if cuda:
            torch.cuda.synchronize()
    wall = time.perf_counter() - start
    events = profiler.key_averages()
    table_path.parent.mkdir(parents=True, exist_ok=True)
    table_path.write_text(events.table(sort_by="self_device_time_total" if cuda else "self_cpu_time_total",
                                       row_limit=40))
    summary: dict[str, float] = {"wall_s": round(wall, 4),
                                 "aten_ops": sum(event.count for event in events if event.key.startswith("aten::"))}
    if cuda:
        summary.update(_gpu_counts(events))
        summary["gpu_busy_share"] = round(summary["gpu_busy_s"] / wall, 3)
    return summary
