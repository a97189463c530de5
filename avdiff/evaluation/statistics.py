"""Mean and 95 % confidence interval (Student's t) of per-file metric values."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import stats


def mean_ci95(values: Iterable[float]) -> dict[str, float | int | None]:
    """{"mean", "ci95", "n"} over the finite values; ci95 is the half-width t_{0.975, n-1} * s / sqrt(n).

    s is the sample standard deviation (ddof=1). Non-finite values (undefined metric, exact-copy
    SI-SDR of +inf) are left out and counted under "excluded". mean is None when n = 0, ci95 when n < 2.
    """
    array = np.asarray(list(values), dtype=np.float64)
    finite = array[np.isfinite(array)]
    n = int(finite.size)
    summary: dict[str, float | int | None] = {
        "mean": float(finite.mean()) if n else None,
        "ci95": None,
        "n": n,
    }
    if n >= 2:
        sem = float(finite.std(ddof=1)) / math.sqrt(n)
        summary["ci95"] = float(stats.t.ppf(0.975, n - 1) * sem)
    if array.size > n:
        summary["excluded"] = int(array.size - n)
    return summary


def summarize(rows: Sequence[dict], metrics: Sequence[str]) -> dict[str, dict]:
    """metric -> mean_ci95 over the rows that have the metric."""
    return {key: mean_ci95(row[key] for row in rows if key in row) for key in metrics
            if any(key in row for row in rows)}
