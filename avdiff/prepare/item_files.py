"""Where a prepared item's files go (`items/<id>.wav`, `items/<id>.npy`, relative to the
manifest) and how its mouth crops are written (atomically, without pickle)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from avdiff.media.files import temporary_path

ITEMS_DIR = "items"


def audio_path(item_id: str) -> str:
    """Manifest-relative path of an item's 16 kHz audio."""
    return f"{ITEMS_DIR}/{item_id}.wav"


def mouth_path(item_id: str) -> str:
    """Manifest-relative path of an item's mouth-crop array."""
    return f"{ITEMS_DIR}/{item_id}.npy"


def write_npy(path: Path, array: np.ndarray) -> None:
    """Save `array` to a temporary name, then rename it into place."""
    tmp = temporary_path(path)
    try:
        np.save(tmp, array, allow_pickle=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
