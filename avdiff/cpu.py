"""CPU defaults that survive a shared machine, set before torch loads OpenMP.

On a 2-core machine, a forward pass of the tiny score network took 0.12 s alone and 3.5 s
beside one other torch process with default settings (30x; 0.3-0.4 s beside a pure-Python
busy loop): OpenMP threads spin while they wait, and two processes that each want every core
fight over them (BENCHMARKS.md, "CPU under load"). Two defaults, applied by
`avdiff/__init__.py` before anything imports torch, and only where the environment does not
already say otherwise:
- OMP_NUM_THREADS from the load: the cores not already busy (CPU time of the last 50 ms
  from /proc/stat; all cores where that cannot be read), at least one. Alone, all cores (no loss); beside one busy process, one thread (0.19-0.26 s
  instead of 0.4-3.5 s in the measurement).
- OMP_WAIT_POLICY=PASSIVE: waiting threads sleep instead of spinning, so an avdiff job does
  not slow down the other processes it shares the cores with.
"""

from __future__ import annotations

import os
import time

WAIT_POLICY = "PASSIVE"
SAMPLE_SECONDS = 0.05  # how long the machine's CPU use is sampled at import
_SET_HERE: set[str] = set()  # the variables apply_cpu_defaults set because the environment lacked them


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def free_cores() -> int:
    """Cores that other processes did not use in the last SAMPLE_SECONDS, at least one."""
    cores = os.cpu_count() or 1
    try:
        busy_before, total_before = _cpu_times()
        time.sleep(SAMPLE_SECONDS)
        busy_after, total_after = _cpu_times()
    except (OSError, ValueError, IndexError):  # not Linux: keep torch's choice of every core
        return cores
    share = (busy_after - busy_before) / max(total_after - total_before, 1)
    return max(1, min(cores, cores - int(round(share * cores))))


def apply_cpu_defaults() -> None:
    """Set OMP_WAIT_POLICY and OMP_NUM_THREADS (see the module docstring) unless already set."""
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = WAIT_POLICY
        _SET_HERE.add("OMP_WAIT_POLICY")
    if "OMP_NUM_THREADS" not in os.environ:  # sample the machine only when the user has not decided
        os.environ["OMP_NUM_THREADS"] = str(free_cores())
        _SET_HERE.add("OMP_NUM_THREADS")


def environment_without_defaults() -> dict[str, str]:
    """This process's environment without the defaults `apply_cpu_defaults` set in it: for a child
    process that must choose its own threads from the load it finds (a benchmark's timed jobs),
    not inherit the parent's choice made at import, perhaps while another process was busy."""
    return {name: value for name, value in os.environ.items() if name not in _SET_HERE}


BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # native bfloat16 arithmetic (x86 /proc/cpuinfo flags)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU does bfloat16 arithmetic natively (without it autocast to bf16 is slow)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return any(flag in line.split() for flag in BF16_CPU_FLAGS)
    except OSError:
        pass
    return False


def cpu_model() -> str:
    """The CPU's name: the first `model name` of /proc/cpuinfo (platform.processor() is often empty
    on Linux), else what the platform module knows."""
    import platform

    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
