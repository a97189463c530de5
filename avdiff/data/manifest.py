"""JSONL manifests of prepared corpora (DESIGN.md section 4), safe to append to and re-read.

One JSON object a line: {"id", "audio", "video", "num_frames", "duration", "speaker",
"text"?, "face_ok"?, "reliability"?}; "audio" (16 kHz mono .wav) and "video" (mouth ROIs, uint8 T x H x W,
25 fps, .npy) are paths relative to the manifest's folder (what `avdiff prepare` writes, so a
corpus folder can move) or absolute (what people write by hand or get from other tools). Audio-only speech has `"video": null`
(and no "face_ok"); its "num_frames" counts 25 fps frames of the audio. "reliability" is the lips'
trust per video frame in [0, 1] (avdiff.mouth.reliability; written by `avdiff prepare`). Unknown keys are errors
(a typo must not silently drop a field) unless the reader is told which extra keys to accept.

Appending is crash-safe: each item is one `write` of one line, flushed and fsynced; a line cut
short by a crash is dropped (with a warning) on reading and cut off before the next append, so
`avdiff prepare` can resume by skipping the ids already present.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from avdiff.errors import InputError

REQUIRED_KEYS: dict[str, tuple[type, ...]] = {
    "id": (str,), "audio": (str,), "video": (str, type(None)), "num_frames": (int,),
    "duration": (int, float), "speaker": (str,),
}
OPTIONAL_KEYS: dict[str, tuple[type, ...]] = {"text": (str,), "face_ok": (list,), "reliability": (list,)}


def validate_item(item: Mapping[str, Any], where: str = "manifest item",
                  extra_keys: Iterable[str] = ()) -> dict[str, Any]:
    """Check one manifest item's keys and types; returns it as a plain dict."""
    if not isinstance(item, Mapping):
        raise InputError(f"{where}: expected a JSON object, got {type(item).__name__}")
    allowed = set(REQUIRED_KEYS) | set(OPTIONAL_KEYS) | set(extra_keys)
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(sorted(allowed))}")
    missing = [k for k in REQUIRED_KEYS if k not in item]
    if missing:
        raise InputError(f"{where}: missing key(s) {', '.join(missing)}")
    for key, types in {**REQUIRED_KEYS, **OPTIONAL_KEYS}.items():
        if key in item and (not isinstance(item[key], types) or isinstance(item[key], bool)):
            raise InputError(f"{where}: {key!r} must be {' or '.join(t.__name__ for t in types)}, "
                             f"got {type(item[key]).__name__}")
    if item["num_frames"] < 1:
        raise InputError(f"{where}: num_frames must be >= 1")
    face_ok = item.get("face_ok")
    if face_ok is not None and item["video"] is None:
        raise InputError(f"{where}: an audio-only item (video null) has no face_ok")
    if face_ok is not None:
        if len(face_ok) != item["num_frames"] or not all(isinstance(v, bool) for v in face_ok):
            raise InputError(f"{where}: face_ok must be {item['num_frames']} booleans (one per frame)")
    reliability = item.get("reliability")
    if reliability is not None and (item["video"] is None or len(reliability) != item["num_frames"] or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in reliability)):
        raise InputError(f"{where}: reliability must be {item['num_frames']} numbers in [0, 1] (one per video frame)")
    for key in ("audio", "video"):
        if item[key] is not None and not item[key].strip():
            raise InputError(f"{where}: {key!r} is an empty path")
    return dict(item)


def read_manifest(path: str | Path, extra_keys: Iterable[str] = ()) -> list[dict[str, Any]]:
    """All items of a JSONL manifest, validated; a cut-off final line is skipped with a warning."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: manifest not found")
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            if number == len(lines) and not text.endswith("\n"):
                warnings.warn(f"{path}: line {number} is incomplete (interrupted write); ignored")
                continue
            raise InputError(f"{path}:{number}: not valid JSON ({error.msg})") from error
        item = validate_item(item, f"{path}:{number}", extra_keys)
        if item["id"] in seen:
            raise InputError(f"{path}:{number}: duplicate id {item['id']!r}")
        seen.add(item["id"])
        items.append(item)
    return items


def _line(item: Mapping[str, Any], extra_keys: Iterable[str]) -> str:
    return json.dumps(validate_item(item, f"item {item.get('id')!r}", extra_keys), ensure_ascii=False) + "\n"


def write_manifest(path: str | Path, items: Iterable[Mapping[str, Any]],
                   extra_keys: Iterable[str] = ()) -> None:
    """Write a whole manifest atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra_keys = tuple(extra_keys)
    ids = [item["id"] for item in items] if isinstance(items, list) else None
    if ids is not None and len(ids) != len(set(ids)):
        raise InputError(f"{path}: duplicate ids in the items to write")
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for item in items:
            handle.write(_line(item, extra_keys))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _drop_partial_tail(path: Path) -> None:
    """Cut off a final line without its newline (left by a crash) so appends start clean."""
    with open(path, "rb+") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        handle.seek(0)
        data = handle.read()
        handle.truncate(data.rfind(b"\n") + 1)


def append_manifest(path: str | Path, items: Iterable[Mapping[str, Any]],
                    extra_keys: Iterable[str] = ()) -> None:
    """Append items, one fsynced line each (crash-safe; see the module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        _drop_partial_tail(path)
    extra_keys = tuple(extra_keys)
    with open(path, "a", encoding="utf-8") as handle:
        for item in items:
            handle.write(_line(item, extra_keys))
            handle.flush()
            os.fsync(handle.fileno())


def has_video(item: Mapping[str, Any]) -> bool:
    """Whether a manifest item has mouth crops (audio-only speech has none)."""
    return item.get("video") is not None


def resolve(manifest_path: str | Path, entry: str) -> Path:
    """The absolute path of a manifest entry's "audio" or "video": relative entries are taken from
    the manifest's folder, absolute ones as they are."""
    return Path(manifest_path).resolve().parent / Path(entry).expanduser()
