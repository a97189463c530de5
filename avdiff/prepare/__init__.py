"""`avdiff prepare`: raw talking-face corpora -> mouth ROIs + 16 kHz audio + a JSONL manifest;
clean-speech corpora (audio only) -> 16 kHz utterances + a manifest.

The names below load on first use (PEP 562), so `avdiff.prepare.settings` (the front-end's
settings, which inference reads too) imports without the corpus runner and its audio stack.
"""

from __future__ import annotations

from avdiff.lazy import lazy_exports
from avdiff.prepare import speech_layouts  # noqa: F401  (registers the audio-only layouts; light)

_EXPORTS = {
    "LAYOUTS": "avdiff.prepare.layouts",
    "MANIFEST_NAME": "avdiff.prepare.runner",
    "PrepareReport": "avdiff.prepare.runner",
    "PrepareSettings": "avdiff.prepare.settings",
    "REJECTS_NAME": "avdiff.prepare.runner",
    "SourceItem": "avdiff.prepare.layouts",
    "discover": "avdiff.prepare.layouts",
    "grid_sentence": "avdiff.prepare.layouts",
    "prepare_corpus": "avdiff.prepare.runner",
    "prepare_item": "avdiff.prepare.item",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
