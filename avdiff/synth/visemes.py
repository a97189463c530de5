"""Phonemes -> viseme targets -> smooth articulator trajectories sampled at the video frames.

Each espeak-ng phoneme (en-us mnemonics) maps to a viseme class; each class has a target for
seven articulator parameters (`PARAMETERS`, all in [0, 1]) and a dominance strength per
parameter. Coarticulation follows Cohen & Massaro's dominance model: the trajectory of a
parameter is the dominance-weighted mean of the targets of all segments, each segment's
dominance decaying exponentially away from its centre, so that
- bilabials (p b m) close the lips whatever the context (very high dominance of `open`,
  `closure`), but take their rounding from the neighbouring vowel ("boo" vs "bee"),
- alveolars and velars barely constrain the lips and inherit rounding and jaw opening from
  their neighbours (anticipatory rounding in "two", "soon"),
- diphthongs are two targets in sequence (aI: open then spread; aU, oU: open then rounded).
A video frame integrates the trajectory over its exposure (the middle half of the frame), so fast
closures still show as partial closures instead of being missed between samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PARAMETERS = ("open", "spread", "round", "teeth", "tongue", "labiodental", "closure")
P = {name: i for i, name in enumerate(PARAMETERS)}


@dataclass(frozen=True)
class Viseme:
    """A viseme class: articulator targets and how strongly each is imposed."""

    name: str
    target: tuple[float, ...]  # one value per PARAMETERS entry
    dominance: tuple[float, ...]  # one strength per PARAMETERS entry
    reach: float  # seconds: how far (beyond its own span) the viseme's influence extends


def _v(name: str, target: tuple[float, float, float, float, float, float, float],
       strength: float = 1.0, reach: float = 0.05, **dominance: float) -> Viseme:
    """A viseme with `target` (see PARAMETERS) and dominance `strength`, overridden per parameter."""
    unknown = set(dominance) - set(PARAMETERS)
    if unknown:
        raise ValueError(f"unknown articulator parameter(s) {sorted(unknown)}")
    return Viseme(name, tuple(float(t) for t in target),
                  tuple(float(dominance.get(p, strength)) for p in PARAMETERS), reach)


# Targets: (open, spread, round, teeth, tongue, labiodental, closure); then the dominances.
VISEMES: dict[str, Viseme] = {v.name: v for v in (
    _v("rest", (0.0, 0.25, 0.1, 0.0, 0.0, 0.0, 0.35), 0.6),
    _v("bilabial", (0.0, 0.3, 0.0, 0.0, 0.0, 0.0, 1.0), 0.25, 0.025, open=10.0, closure=10.0, teeth=8.0,
       labiodental=8.0, tongue=8.0),
    _v("labiodental", (0.1, 0.35, 0.0, 1.0, 0.0, 1.0, 0.0), 0.3, 0.025, open=8.0, labiodental=10.0, teeth=8.0,
       closure=8.0, tongue=3.0),
    _v("dental", (0.3, 0.45, 0.0, 0.8, 1.0, 0.0, 0.0), 0.5, 0.03, tongue=8.0, open=3.0, teeth=4.0),
    _v("alveolar", (0.2, 0.4, 0.0, 0.8, 0.15, 0.0, 0.0), 0.2, open=1.0, teeth=2.0, tongue=1.0),
    _v("lateral", (0.3, 0.35, 0.0, 0.6, 0.6, 0.0, 0.0), 0.2, open=1.0, teeth=1.0, tongue=3.0),
    _v("sibilant", (0.1, 0.6, 0.0, 1.0, 0.0, 0.0, 0.0), 0.3, 0.03, open=3.0, teeth=4.0, spread=0.8),
    _v("postalveolar", (0.16, 0.0, 0.75, 0.8, 0.0, 0.0, 0.0), 0.5, round=5.0, open=3.0, teeth=3.0, spread=3.0),
    _v("velar", (0.3, 0.35, 0.0, 0.4, 0.0, 0.0, 0.0), 0.15, open=0.8),
    _v("glottal", (0.35, 0.3, 0.0, 0.3, 0.0, 0.0, 0.0), 0.05),
    _v("w", (0.1, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0), 1.0, 0.04, round=6.0, open=4.0, spread=4.0),
    _v("r", (0.2, 0.1, 0.6, 0.3, 0.0, 0.0, 0.0), 0.6, round=4.0, open=1.5),
    _v("j", (0.2, 0.75, 0.0, 0.6, 0.0, 0.0, 0.0), 0.6, spread=3.0),
    _v("i", (0.28, 1.0, 0.0, 0.9, 0.0, 0.0, 0.0)),
    _v("I", (0.4, 0.75, 0.0, 0.7, 0.0, 0.0, 0.0)),
    _v("E", (0.55, 0.6, 0.0, 0.6, 0.0, 0.0, 0.0)),
    _v("ae", (0.85, 0.6, 0.0, 0.5, 0.0, 0.0, 0.0)),
    _v("schwa", (0.4, 0.3, 0.0, 0.3, 0.0, 0.0, 0.0), 0.6),
    _v("A", (1.0, 0.3, 0.0, 0.3, 0.0, 0.0, 0.0)),
    _v("V", (0.65, 0.3, 0.0, 0.3, 0.0, 0.0, 0.0)),
    _v("er", (0.35, 0.05, 0.5, 0.3, 0.0, 0.0, 0.0)),
    _v("O", (0.7, 0.0, 0.65, 0.2, 0.0, 0.0, 0.0)),
    _v("o", (0.5, 0.0, 0.8, 0.2, 0.0, 0.0, 0.0), 1.0, 0.06, round=2.0),
    _v("U", (0.35, 0.0, 0.75, 0.2, 0.0, 0.0, 0.0)),
    _v("u", (0.2, 0.0, 1.0, 0.1, 0.0, 0.0, 0.0), 1.0, 0.07, round=3.0),
)}

# espeak-ng en mnemonic (stress marks removed) -> viseme class, or a sequence for diphthongs.
PHONEME_VISEMES: dict[str, tuple[str, ...]] = {
    **{p: ("rest",) for p in ("_", "_:", "_!", "_^_", ";", "||", "|")},
    **{p: ("bilabial",) for p in ("p", "b", "m")},
    **{p: ("labiodental",) for p in ("f", "v")},
    **{p: ("dental",) for p in ("T", "D")},
    **{p: ("alveolar",) for p in ("t", "d", "n", "t#", "d#", "n-", "*", "t2", "d2")},
    **{p: ("lateral",) for p in ("l", "l/", "l#", "@L")},
    **{p: ("sibilant",) for p in ("s", "z")},
    **{p: ("postalveolar",) for p in ("S", "Z", "tS", "dZ")},
    **{p: ("velar",) for p in ("k", "g", "N", "x")},
    **{p: ("glottal",) for p in ("h", "?")},
    "w": ("w",), "r": ("r",), "r-": ("r",), "j": ("j",),
    "i:": ("i",), "i": ("i",), "I": ("I",), "I#": ("I",), "I2": ("I",), "E": ("E",), "E2": ("E",),
    "a": ("ae",), "aa": ("A",), "A:": ("A",), "A": ("A",), "V": ("V",), "0": ("O",),
    "@": ("schwa",), "@2": ("schwa",), "@5": ("schwa",), "a#": ("schwa",),
    "3:": ("er",), "3": ("er",), "VR": ("er",), "O:": ("O",), "O": ("O",), "U": ("U",), "u:": ("u",),
    "eI": ("E", "i"), "aI": ("A", "I"), "aU": ("A", "u"), "oU": ("o", "u"), "OI": ("O", "i"),
    "i@": ("i", "schwa"), "i@3": ("i", "er"), "e@": ("E", "schwa"), "A@": ("A", "er"), "o@": ("O", "er"),
    "O@": ("O", "er"), "U@": ("U", "schwa"), "aI@": ("A", "I", "schwa"), "aU@": ("A", "u", "schwa"),
    "IR": ("I", "er"), "oUl": ("o", "lateral"), "aI3": ("A", "I", "er"),
}


def viseme_sequence(phoneme: str) -> tuple[str, ...]:
    """Viseme classes of an espeak-ng phoneme mnemonic; KeyError for an unknown phoneme."""
    key = phoneme.lstrip("',%=")
    if key in PHONEME_VISEMES:
        return PHONEME_VISEMES[key]
    if key.endswith(("#", ";")) and key[:-1] in PHONEME_VISEMES:
        return PHONEME_VISEMES[key[:-1]]
    raise KeyError(phoneme)


def fallback_sequence(phoneme: str) -> tuple[str, ...]:
    """A best guess for mnemonics outside the table (other languages): by the first character."""
    try:
        return viseme_sequence(phoneme)
    except KeyError:
        key = phoneme.lstrip("',%=")
        for n in range(len(key) - 1, 0, -1):
            if key[:n] in PHONEME_VISEMES:
                return PHONEME_VISEMES[key[:n]]
        return ("schwa",)


@dataclass(frozen=True)
class Segment:
    """A viseme target held over [start, end) seconds."""

    viseme: str
    start: float
    end: float


def segments_from_phonemes(phonemes: Sequence[tuple[str, float, float]]) -> list[Segment]:
    """(mnemonic, start s, end s) -> viseme segments; diphthongs split 45 % / 55 % (or in thirds)."""
    segments: list[Segment] = []
    for name, start, end in phonemes:
        parts = fallback_sequence(name)
        if len(parts) == 1:
            segments.append(Segment(parts[0], start, end))
            continue
        bounds = [0.0, 0.45, 1.0] if len(parts) == 2 else list(np.linspace(0.0, 1.0, len(parts) + 1))
        for part, a, b in zip(parts, bounds[:-1], bounds[1:]):
            segments.append(Segment(part, start + a * (end - start), start + b * (end - start)))
    return segments


def trajectories(segments: Sequence[Segment], times: np.ndarray, spread_fraction: float = 0.3) -> np.ndarray:
    """Articulator parameters at `times` (seconds): (len(times), len(PARAMETERS)).

    Dominance of segment k at time t: alpha_k * exp(-(max(0, |t - c_k| - h_k) / s_k)**2) where
    c_k is its centre, h_k a plateau of 30 % of its half-length (the target is held inside the
    segment) and s_k = reach_k + spread_fraction * duration_k its width.
    """
    if not segments:
        out = np.tile(np.asarray(VISEMES["rest"].target, np.float64), (times.size, 1))
        return out.astype(np.float32)
    starts = np.array([s.start for s in segments])
    ends = np.array([s.end for s in segments])
    centres, halves = (starts + ends) / 2, (ends - starts) / 2
    targets = np.array([VISEMES[s.viseme].target for s in segments])  # (K, P)
    alphas = np.array([VISEMES[s.viseme].dominance for s in segments])  # (K, P)
    reach = np.array([VISEMES[s.viseme].reach for s in segments])
    decay = reach + spread_fraction * 2 * halves  # (K,)
    distance = np.maximum(np.abs(times[None, :] - centres[:, None]) - 0.3 * halves[:, None], 0.0)
    shape = np.exp(-np.square(distance / decay[:, None]))  # (K, N)
    weights = alphas[:, None, :] * shape[:, :, None] + 1e-12  # (K, N, P)
    return ((weights * targets[:, None, :]).sum(0) / weights.sum(0)).astype(np.float32)


def frame_trajectories(segments: Sequence[Segment], num_frames: int, fps: float,
                       exposure: float = 0.5, subsamples: int = 6) -> np.ndarray:
    """Parameters per video frame (num_frames, P): the mean over the frame's exposure window.

    Frame j covers [j / fps, (j + 1) / fps), the same interval as audio samples
    [640 j, 640 j + 640); the shutter is open for the middle `exposure` fraction of it.
    """
    offsets = (np.arange(subsamples) + 0.5) / subsamples * exposure / fps
    centre_shift = 0.5 / fps - exposure / (2 * fps)  # centre the exposure in the frame
    times = (np.arange(num_frames)[:, None] / fps + centre_shift + offsets[None, :]).reshape(-1)
    values = trajectories(segments, times)
    return values.reshape(num_frames, subsamples, -1).mean(axis=1)
