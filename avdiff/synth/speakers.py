"""Speaker profiles: an espeak-ng voice (variant, pitch, pitch range, rate, word gap) + a fixed look.

Speaker k of a corpus is drawn from `numpy.random.default_rng([seed, k])`, so the first K
speakers of a seed do not depend on how many speakers or utterances are asked for. Voice
variants are taken in turn from the variant list (`DEFAULT_VARIANTS`, chosen for how well a
recogniser transcribes them; see benchmarks/quality/synth_intelligibility.py), so K >= len(list)
speakers use every variant; pitch, rate and look vary around each variant's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from avdiff.errors import InputError
from avdiff.synth.espeak import VoiceSettings, available_variants
from avdiff.synth.render import Appearance

# Voice variants (espeak-ng-data/voices/!v) and the prosody ranges used by default. See
# BENCHMARKS.md for the word error rates that motivated them.
DEFAULT_VARIANTS: tuple[str, ...] = ("f2", "m6", "f1", "adam", "f5", "michel", "f3", "klatt")
RATE_RANGE = (140, 160)  # words per minute (espeak-ng default 175: too fast to recognise well)
WORD_GAP_RANGE = (0, 1)  # x 10 ms between words (longer gaps raised the WER: BENCHMARKS.md)
PITCH_RANGE_RANGE = (50, 65)  # intonation range (default 50)
PITCH_RANGE = (35, 65)  # base pitch (default 50)


@dataclass(frozen=True)
class Speaker:
    id: str
    voice: VoiceSettings
    appearance: Appearance

    def to_json(self) -> dict:
        return {"id": self.id, "voice": asdict(self.voice), "appearance": asdict(self.appearance)}


def check_variants(variants: Sequence[str]) -> tuple[str, ...]:
    """The variants as a tuple; InputError naming an unknown one and where the known ones are."""
    if not variants:
        raise InputError("need at least one voice variant")
    known = set(available_variants())
    for variant in variants:
        if variant and variant not in known:
            short = ", ".join(sorted(v for v in known if len(v) <= 2))
            raise InputError(f"unknown voice {variant!r}: not an espeak-ng voice variant (e.g. {short}; "
                             f"all {len(known)} are listed by `avdiff synth --list-voices`)")
    return tuple(variants)


def make_speaker(seed: int, index: int, variants: Sequence[str] = DEFAULT_VARIANTS) -> Speaker:
    """Speaker number `index` (0-based) of a corpus with random seed `seed`."""
    rng = np.random.default_rng([seed, 7919, index])
    variant = variants[index % len(variants)]
    voice = VoiceSettings(
        language="en-us", variant=variant,
        rate=int(rng.integers(RATE_RANGE[0], RATE_RANGE[1] + 1)),
        pitch=int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)),
        pitch_range=int(rng.integers(PITCH_RANGE_RANGE[0], PITCH_RANGE_RANGE[1] + 1)),
        word_gap=int(rng.integers(WORD_GAP_RANGE[0], WORD_GAP_RANGE[1] + 1)),
    )
    appearance = Appearance(
        skin=float(rng.uniform(0.35, 0.72)),
        lip_contrast=float(rng.uniform(0.08, 0.2)),
        upper_lip=float(rng.uniform(0.14, 0.26)),
        lower_lip=float(rng.uniform(0.2, 0.34)),
        mouth_width_px=float(rng.uniform(21.0, 27.0)),
        cupid_bow=float(rng.uniform(0.15, 0.45)),
        max_open=float(rng.uniform(0.7, 1.0)),
        teeth=float(rng.uniform(0.75, 0.92)),
        cavity=float(rng.uniform(0.04, 0.14)),
        vertical_offset_px=float(rng.uniform(-2.0, 5.0)),
        texture_seed=int(rng.integers(2**31)),
        texture_amplitude=float(rng.uniform(0.01, 0.035)),
    )
    return Speaker(id=f"s{index + 1:02d}", voice=voice, appearance=appearance)


def make_speakers(seed: int, count: int, variants: Sequence[str] = DEFAULT_VARIANTS) -> list[Speaker]:
    if count < 1:
        raise InputError(f"--speakers must be >= 1, got {count}")
    variants = check_variants(variants)
    return [make_speaker(seed, k, variants) for k in range(count)]
