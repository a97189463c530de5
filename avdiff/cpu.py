"""CPU defaults that survive a shared machine, set before torch loads OpenMP.

With OpenMP's default wait policy, a thread that finishes its share of a parallel region spins
while it waits for the others; on a 2-core machine where another process holds a core, the
spinning thread and the one it waits for fight over the same cores and a forward pass took 2-6x
longer (BENCHMARKS.md, "CPU under load"). PASSIVE makes waiting threads sleep: the same pass
then costs about what it costs alone, and on an idle machine nothing is lost. OpenMP reads the
setting once, when torch loads it, so `avdiff/__init__.py` applies it on import; a value the user
set (OMP_WAIT_POLICY in the environment) is kept.
"""

from __future__ import annotations

import os

WAIT_POLICY = "PASSIVE"


def apply_cpu_defaults() -> None:
    """Set OMP_WAIT_POLICY=PASSIVE unless the environment already says otherwise."""
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)
