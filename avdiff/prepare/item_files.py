"""Where a prepared item's files go: `items/<id>.wav` and `items/<id>.npy`, relative to the manifest."""

from __future__ import annotations

ITEMS_DIR = "items"


def audio_path(item_id: str) -> str:
    """Manifest-relative path of an item's 16 kHz audio."""
    return f"{ITEMS_DIR}/{item_id}.wav"


def mouth_path(item_id: str) -> str:
    """Manifest-relative path of an item's mouth-crop array."""
    return f"{ITEMS_DIR}/{item_id}.npy"
