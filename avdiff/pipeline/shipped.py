"""The models shipped in the repository's `models/` folder, by name.

`avdiff enhance` uses `DEFAULT_ENHANCER` and `avdiff generate` `DEFAULT_GENERATOR` when no
`--model` is given, `avdiff demo` `DEFAULT_AUDIO_VISUAL`; `--model NAME` picks any
shipped model by name, `--model PATH` any model folder. `AVDIFF_MODELS` points elsewhere (for
installs where the repository's `models/` is not beside the package).
"""

from __future__ import annotations

import os
from pathlib import Path

from avdiff.errors import InputError

DEFAULT_ENHANCER = "speech-prior"  # audio-only prior of real speech
# Video-to-speech (`avdiff generate`, `avdiff serve`): v2s with lips that name the phonemes, learned from
# 2592 faces since 2026-12-05: on 200 held-out clips of 60 new faces WER 0.071 and ESTOI 0.585 against
# 0.102 and 0.520 for its 160-face lips; on 36 clips of 8 faces the 160-face lips read 0.130 where v2s-fast
# (the default until 2026-12-04) read about 0.255 (BENCHMARKS.md, "Lips that name the phonemes",
# "Tenth session", "Eleventh session").
DEFAULT_GENERATOR = "v2s-context"
# The audio-visual model of the synthetic corpus (`avdiff demo`'s shipped rows: video-to-speech with
# guidance and the lips' enhancement prior, which needs an undistilled network; `avdiff extract`):
# v2s-context since 2026-12-04, on held-out seed-102 clips not worse than v2s anywhere: audio-visual
# enhancement +0.03..+0.88 dB SI-SDR (babble and real noise, -5/0/20 dB), extraction -0.07 +- 0.41 dB
# with ESTOI +0.02 (BENCHMARKS.md, "v2s-context in the audio-visual path"); its retrained lips (tenth
# session) add +0.2..+1.8 dB to the audio-visual rows, extraction unchanged ("Tenth session"); the lips of
# 2592 faces enhance as those of 160 did, within every interval ("Eleventh session").
DEFAULT_AUDIO_VISUAL = "v2s-context"
# Whether enhancement and extraction weigh the lips by their agreement with the sound unless told
# (`avdiff.pipeline.av_agreement`). On: on held-out seed-102 clips (detrended envelopes) another
# person's mouth on every frame costs -0.36..+0.11 dB against audio-only (-2.4..+0.3 without it),
# and the talker's own lips keep their gain (0.3 dB less at -5 dB babble, the same elsewhere;
# BENCHMARKS.md, "The agreement in step").
LIP_AGREEMENT_BY_DEFAULT = True


def shipped_models_dir() -> Path:
    """`$AVDIFF_MODELS`, else the repository's `models/` beside the package."""
    override = os.environ.get("AVDIFF_MODELS")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "models"


def resolve_model(model: str | Path) -> Path:
    """A model folder from a path, or from the name of a shipped model."""
    path = Path(model)
    if path.exists() or os.sep in str(model) or str(model).startswith("."):
        return path
    shipped = shipped_models_dir() / str(model)
    if not shipped.is_dir():
        available = sorted(p.name for p in shipped_models_dir().glob("*") if (p / "avdiff_pipeline.json").is_file())
        raise InputError(f"{model}: no such model folder, and no shipped model of that name in "
                         f"{shipped_models_dir()} (shipped: {', '.join(available) or 'none'}; set AVDIFF_MODELS "
                         "or pass --model PATH)")
    return shipped
