"""`avdiff prepare`: raw talking-face corpora -> mouth ROIs + 16 kHz audio + a JSONL manifest;
clean-speech corpora (audio only) -> 16 kHz utterances + a manifest."""

from avdiff.prepare.item import prepare_item
from avdiff.prepare.layouts import LAYOUTS, SourceItem, discover, grid_sentence
from avdiff.prepare.runner import MANIFEST_NAME, REJECTS_NAME, PrepareReport, prepare_corpus
from avdiff.prepare.settings import PrepareSettings
from avdiff.prepare import speech_layouts  # noqa: F401  (registers the audio-only layouts)

__all__ = ["LAYOUTS", "MANIFEST_NAME", "REJECTS_NAME", "PrepareReport", "PrepareSettings", "SourceItem",
           "discover", "grid_sentence", "prepare_corpus", "prepare_item"]
