"""Why an item cannot be used: the reject error and the speech checks that video and audio-only
preparation share (`avdiff.prepare.item`, `avdiff.prepare.audio_item`).

Kept apart from both so that neither imports the other.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from avdiff.errors import InputError
from avdiff.prepare.settings import PrepareSettings
from avdiff.timegrid import SAMPLE_RATE

SILENT_PEAK = 10 ** (-60 / 20)  # -60 dBFS
CLIPPED_LEVEL = 0.999


class RejectedItem(InputError):
    """The item cannot be used; the message is the one-line reason for the rejects report."""


def check_speech(samples: np.ndarray, where: Path, settings: PrepareSettings) -> None:
    """RejectedItem for audio that cannot train a prior: NaN, silent, clipped or too short."""
    if not np.isfinite(samples).all():
        raise RejectedItem(f"{where}: contains NaN or infinite samples")
    duration = len(samples) / SAMPLE_RATE
    if duration < settings.min_duration:
        raise RejectedItem(f"{where}: too short: {duration:.2f} s (minimum {settings.min_duration:.2f} s)")
    peak = float(np.abs(samples).max())
    if peak < SILENT_PEAK:
        raise RejectedItem(f"{where}: silent (peak {20 * math.log10(max(peak, 1e-12)):.0f} dBFS)")
    clipped = int(np.count_nonzero(np.abs(samples) >= CLIPPED_LEVEL))
    if clipped > max(10, 0.001 * len(samples)):
        raise RejectedItem(f"{where}: clipped ({clipped} samples at full scale)")
