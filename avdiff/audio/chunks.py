"""Long inputs in overlapping chunks on the STFT frame grid, joined by cross-fades (enhancement,
generation, extraction, and the posterior's windowed input-mix decision).

Chunks start on multiples of 5 STFT frames (video-frame boundaries), so the lip condition of
a chunk is a plain slice of the clip's condition. Chunk spectrograms are slices of the whole
signal's STFT (exact, no edge effects); results are joined by weighting each chunk with a
raised-cosine taper over its overlaps and normalising the weights to sum to one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor

from avdiff.timegrid import STFT_FRAMES_PER_VIDEO_FRAME

# Enhancement cross-fades chunks over this many STFT frames (generation's overlaps: avdiff.pipeline.plans).
ENHANCEMENT_OVERLAP_FRAMES = 32


def plan_chunks(num_frames: int, chunk_frames: int, overlap_frames: int) -> list[tuple[int, int]]:
    """(start, end) STFT-frame ranges covering [0, num_frames); starts are multiples of 5.

    A short input is one chunk of its own length. Otherwise every chunk has `chunk_frames`
    frames (so chunks batch together) and the last one may end up to 4 frames past the
    input: callers pad to `chunks[-1][1]` and crop the joined result.
    """
    if chunk_frames <= overlap_frames or overlap_frames < 0:
        raise ValueError(f"need 0 <= overlap_frames ({overlap_frames}) < chunk_frames ({chunk_frames})")
    if num_frames <= chunk_frames:
        return [(0, num_frames)]
    hop = chunk_frames - overlap_frames
    hop -= hop % STFT_FRAMES_PER_VIDEO_FRAME
    if hop <= 0:
        raise ValueError(f"chunk_frames - overlap_frames must be at least {STFT_FRAMES_PER_VIDEO_FRAME}")
    last = num_frames - chunk_frames
    last += -last % STFT_FRAMES_PER_VIDEO_FRAME  # aligned up: the last chunk reaches the end
    starts = list(range(0, last, hop)) + [last]
    return [(start, start + chunk_frames) for start in starts]


def plan_even_chunks(num_frames: int, max_frames: int, overlap_frames: int) -> list[tuple[int, int]]:
    """As `plan_chunks`, with as few chunks of at most `max_frames` as cover the input, all of the
    shortest length that still needs no more of them: the work of a posterior pass is the frames
    it is given, so a 10 s input becomes two chunks of 642 frames (1284) rather than two of
    1024 (2048) or six of 256 (1536)."""
    chunks = plan_chunks(num_frames, max_frames, overlap_frames)
    if len(chunks) == 1:
        return chunks
    least = math.ceil((num_frames + (len(chunks) - 1) * overlap_frames) / len(chunks))
    for length in range(max(least, overlap_frames + STFT_FRAMES_PER_VIDEO_FRAME), max_frames):
        shorter = plan_chunks(num_frames, length, overlap_frames)
        if len(shorter) == len(chunks):
            return shorter
    return chunks


def chunk_weights(chunks: list[tuple[int, int]], num_frames: int) -> list[Tensor]:
    """Per-chunk weights over its own frames that sum to one across chunks at every frame."""
    raw = []
    for index, (start, end) in enumerate(chunks):
        weight = torch.ones(end - start, dtype=torch.float64)
        if index > 0:  # fade in over the overlap with the previous chunk
            overlap = chunks[index - 1][1] - start
            if overlap > 0:
                ramp = torch.arange(1, overlap + 1, dtype=torch.float64) / (overlap + 1)
                weight[:overlap] = 0.5 - 0.5 * torch.cos(math.pi * ramp)
        if index + 1 < len(chunks):  # fade out over the overlap with the next chunk
            overlap = end - chunks[index + 1][0]
            if overlap > 0:
                ramp = torch.arange(overlap, 0, -1, dtype=torch.float64) / (overlap + 1)
                weight[-overlap:] = torch.minimum(weight[-overlap:], 0.5 - 0.5 * torch.cos(math.pi * ramp))
        raw.append(weight)
    total = torch.zeros(num_frames, dtype=torch.float64)
    for (start, end), weight in zip(chunks, raw):
        total[start:end] += weight
    return [(weight / total[start:end]).to(torch.float32) for (start, end), weight in zip(chunks, raw)]


def join_chunks(pieces: Iterable[Tensor], chunks: list[tuple[int, int]], num_frames: int) -> Tensor:
    """Weighted sum of chunk tensors (..., T_chunk) into one (..., num_frames) tensor. `pieces` may
    be a generator: each piece is added and dropped in turn, so only the sum is held whole."""
    padded = chunks[-1][1]
    weights = chunk_weights(chunks, padded)
    out: Tensor | None = None
    for piece, (start, end), weight in zip(pieces, chunks, weights):
        if out is None:
            out = torch.zeros(*piece.shape[:-1], padded, dtype=piece.dtype, device=piece.device)
        out[..., start:end] += piece * weight.to(piece.device)
    assert out is not None, "no chunk to join"
    return out[..., :num_frames]
