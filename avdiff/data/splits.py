"""Speaker-disjoint train / valid / test splits of a prepared manifest.

Held-out speakers are drawn with a seed from the sorted speaker list, so the same manifest and
seed always give the same split; the split manifests are written beside the source manifest
(their paths stay relative to the same folder).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from avdiff.data.manifest import read_manifest, write_manifest
from avdiff.errors import InputError

SPLITS = ("train", "valid", "test")


def choose_speakers(speakers: list[str], test: int, valid: int, seed: int) -> dict[str, set[str]]:
    """Which speakers go to each split: `test` and `valid` held out, the rest train."""
    unique = sorted(set(speakers))
    if test + valid >= len(unique):
        raise InputError(f"{len(unique)} speakers cannot give {test} test and {valid} validation speakers "
                         "and still leave some to train on")
    order = unique[:]
    random.Random(seed).shuffle(order)
    return {"test": set(order[:test]), "valid": set(order[test : test + valid]), "train": set(order[test + valid :])}


def split_manifest(manifest: str | Path, test_speakers: int, valid_speakers: int = 0,
                   seed: int = 0) -> dict[str, Path]:
    """Write `train.jsonl`, `valid.jsonl` (when valid_speakers > 0) and `test.jsonl` beside `manifest`."""
    manifest = Path(manifest)
    items = read_manifest(manifest)
    chosen = choose_speakers([item["speaker"] for item in items], test_speakers, valid_speakers, seed)
    written = {}
    for split in SPLITS:
        members: list[dict[str, Any]] = [item for item in items if item["speaker"] in chosen[split]]
        if not members:
            continue
        path = manifest.with_name(f"{split}.jsonl")
        if path.resolve() == manifest.resolve():
            raise InputError(f"{manifest}: name the source manifest other than {path.name} (it would be overwritten)")
        write_manifest(path, members)
        written[split] = path
    return written
