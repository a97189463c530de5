"""Long recordings cut at pauses into utterances no longer than a limit.

The cut goes in the middle of a pause (a run of 20 ms frames 35 dB below the loudest) that
leaves both sides at least `min_seconds` long: of the pauses of at least 0.1 s, the one
nearest the piece's middle (balanced pieces); else the longest shorter one; with no pause at
all, the quietest frame. Recursively, until every piece is short enough. Pieces are
contiguous: nothing is dropped.
"""

from __future__ import annotations

import numpy as np

FRAME_SECONDS = 0.02
PAUSE_BELOW_PEAK_DB = 35.0
MIN_PAUSE_FRAMES = 5  # 0.1 s


def frame_levels(samples: np.ndarray, frame: int) -> np.ndarray:
    """Level in dB of each non-overlapping `frame`-sample frame (the tail frame included)."""
    count = -(-len(samples) // frame)
    padded = np.zeros(count * frame, dtype=np.float64)
    padded[: len(samples)] = samples
    power = np.mean(padded.reshape(count, frame) ** 2, axis=1)
    return 10.0 * np.log10(power + 1e-12)


def _pause_runs(quiet: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) frame ranges of the runs of quiet frames."""
    edges = np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def _cut_frame(quiet: np.ndarray, levels: np.ndarray, min_frames: int) -> int:
    """Where to cut a piece (frame index within it); see the module docstring."""
    lo, hi, middle = min_frames, len(quiet) - min_frames, len(quiet) / 2
    runs = [(start, end) for start, end in _pause_runs(quiet) if lo <= (start + end) // 2 < hi]
    long_runs = [run for run in runs if run[1] - run[0] >= MIN_PAUSE_FRAMES]
    if long_runs:
        start, end = min(long_runs, key=lambda run: abs((run[0] + run[1]) / 2 - middle))
        return (start + end) // 2
    if runs:
        start, end = max(runs, key=lambda run: run[1] - run[0])
        return (start + end) // 2
    return lo + int(np.argmin(levels[lo:hi]))


def split_at_pauses(samples: np.ndarray, sample_rate: int, max_seconds: float = 20.0,
                    min_seconds: float = 1.0) -> list[tuple[int, int]]:
    """(start, end) sample ranges covering `samples`, each at most `max_seconds` long."""
    if max_seconds <= 2 * min_seconds:
        raise ValueError("max_seconds must exceed twice min_seconds")
    frame = max(1, int(round(FRAME_SECONDS * sample_rate)))
    levels = frame_levels(samples, frame)
    quiet = levels < levels.max() - PAUSE_BELOW_PEAK_DB
    min_frames, max_frames = int(min_seconds / FRAME_SECONDS), int(max_seconds / FRAME_SECONDS)
    pieces, todo = [], [(0, len(levels))]
    while todo:
        first, last = todo.pop()
        if last - first <= max_frames:
            pieces.append((first, last))
            continue
        cut = _cut_frame(quiet[first:last], levels[first:last], min_frames)
        todo += [(first + cut, last), (first, first + cut)]
    pieces.sort()
    return [(a * frame, min(b * frame, len(samples))) for a, b in pieces]
