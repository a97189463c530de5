"""Learning-rate schedule: linear warm-up, then cosine decay to zero or a constant rate."""

from __future__ import annotations

import math
from collections.abc import Callable


def lr_multiplier(schedule: str, warmup_steps: int, max_steps: int) -> Callable[[int], float]:
    """step -> factor on the peak learning rate (for torch.optim.lr_scheduler.LambdaLR)."""

    def factor(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    if schedule not in ("cosine", "constant"):
        raise ValueError(f"unknown lr_schedule {schedule!r}")
    return factor
