"""Where the videos, audio and transcripts of each supported corpus are, as published.

- `folder`: any tree of videos (`avdiff.media.files.VIDEO_SUFFIXES`). Transcript from a sibling
  `<name>.txt` (an LRS3-style "Text:" line if present, else the whole file); audio from a sibling
  `<name>.wav`/`.flac` if present, else from the video's own track. Speaker: the parent folder.
- `grid`: GRID (Cooke et al. 2006): `s<N>/` folders of `.mpg` videos (often `s<N>/video/mpg_6000/`);
  audio, when downloaded apart, in `audio_25k/s<N>/` or `audio_50k/s<N>/` (else the video's own
  track); word alignments in `alignments/s<N>/<name>.align` or `s<N>/align/`; without them the
  transcript is decoded from the file name (`avdiff.grid_grammar`: command colour preposition
  letter digit adverb, "bbaf2n" = "bin blue at f two now").
- `lrs3`: LRS3-TED: `{pretrain,trainval,test}/<speaker id>/<NNNNN>.mp4` with `<NNNNN>.txt`
  ("Text:  WORDS" first line). Audio from the .mp4.
- `tcd-timit`: TCD-TIMIT: `volunteers/<NNx>/Clips/<camera>/<sentence>.mp4` and
  `lipspeakers/<Lipspkr N>/Clips/<camera>/...`; frontal camera (`straightcam`) only by default.
  Audio from a sibling .wav if present, else the .mp4; transcript from a sibling .txt if present.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from avdiff.errors import InputError
from avdiff.grid_grammar import words_of_code
from avdiff.media.files import SIDECAR_AUDIO_SUFFIXES, VIDEO_SUFFIXES
from avdiff.registry import Registry, RegistryError


@dataclass(frozen=True)
class SourceItem:
    """One utterance to prepare: where its video (and audio) come from, and what it is.

    Audio-only items (the speech layouts) have no video and always an audio file."""

    id: str  # unique, '/'-separated; also the output path stem
    video: Path | None  # None: an audio-only item
    audio: Path | None  # None: the video's own audio track
    speaker: str
    text: str | None

    @property
    def source(self) -> Path:
        """The file the item is read from (its video, or its audio when it has none)."""
        source = self.video if self.video is not None else self.audio
        assert source is not None, "an item needs a video or an audio file"
        return source


def _videos(root: Path) -> list[Path]:
    """Video files below root; broken symlinks are kept so that they are reported, not lost."""
    return sorted(p for p in root.rglob("*")
                  if p.suffix.lower() in VIDEO_SUFFIXES and (p.is_file() or p.is_symlink()))


def _sibling_audio(video: Path) -> Path | None:
    for suffix in SIDECAR_AUDIO_SUFFIXES:
        candidate = video.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def read_transcript(path: Path) -> str | None:
    """An LRS3-style "Text:" line if the file has one, else the whole file, whitespace-collapsed."""
    if not path.is_file():
        return None
    content = path.read_text(encoding="utf-8", errors="replace")
    for line in content.splitlines():
        if line.startswith("Text:"):
            return " ".join(line[len("Text:"):].split()) or None
    return " ".join(content.split()) or None


def _rel_id(root: Path, path: Path) -> str:
    return path.relative_to(root).with_suffix("").as_posix()


def discover_folder(root: Path) -> list[SourceItem]:
    items = []
    for video in _videos(root):
        parent = video.parent.relative_to(root).as_posix()
        items.append(SourceItem(id=_rel_id(root, video), video=video, audio=_sibling_audio(video),
                                speaker=parent if parent != "." else root.name,
                                text=read_transcript(video.with_suffix(".txt"))))
    return items


# -- GRID ---------------------------------------------------------------------------------------
def grid_sentence(stem: str) -> str | None:
    """The sentence a GRID file name encodes ("bbaf2n" -> "bin blue at f two now"), or None."""
    words = words_of_code(stem)
    return " ".join(words) if words else None


def read_grid_align(path: Path) -> str | None:
    """Words of a GRID .align file ("start end word" lines), without silences."""
    if not path.is_file():
        return None
    words = [parts[2] for parts in (line.split() for line in path.read_text().splitlines())
             if len(parts) >= 3 and parts[2] not in ("sil", "sp")]
    return " ".join(words) or None


def _grid_speaker(root: Path, video: Path) -> str:
    for part in reversed(video.relative_to(root).parts[:-1]):
        if re.fullmatch(r"s\d+", part):
            return part
    return root.name if video.parent == root else video.parent.relative_to(root).parts[0]


def discover_grid(root: Path) -> list[SourceItem]:
    items = []
    for video in _videos(root):
        if any(part.startswith("audio_") for part in video.relative_to(root).parts):
            continue
        speaker, stem = _grid_speaker(root, video), video.stem
        audio_candidates = [root / "audio_25k" / speaker / f"{stem}.wav", root / "audio_50k" / speaker / f"{stem}.wav",
                            root / speaker / "audio" / f"{stem}.wav", video.with_suffix(".wav")]
        align_candidates = [root / "alignments" / speaker / f"{stem}.align", root / speaker / "align" / f"{stem}.align",
                            video.with_suffix(".align")]
        audio = next((p for p in audio_candidates if p.is_file()), None)
        text = next((t for t in (read_grid_align(p) for p in align_candidates) if t), None) or grid_sentence(stem)
        items.append(SourceItem(id=f"{speaker}/{stem}", video=video, audio=audio, speaker=speaker, text=text))
    return items


def discover_lrs3(root: Path) -> list[SourceItem]:
    items = []
    for video in _videos(root):
        items.append(SourceItem(id=_rel_id(root, video), video=video, audio=None, speaker=video.parent.name,
                                text=read_transcript(video.with_suffix(".txt"))))
    return items


def discover_tcd_timit(root: Path, cameras: tuple[str, ...] = ("straightcam",)) -> list[SourceItem]:
    items = []
    for video in _videos(root):
        parts = video.relative_to(root).parts
        if "Clips" not in parts:
            continue
        clips = parts.index("Clips")
        if clips < 1 or clips + 2 >= len(parts) or parts[clips + 1] not in cameras:
            continue
        speaker = parts[clips - 1]
        group = parts[clips - 2] if clips >= 2 else ""
        camera = parts[clips + 1]
        pieces = [p for p in (group, speaker, camera if len(cameras) > 1 else "", video.stem) if p]
        items.append(SourceItem(id="/".join(pieces), video=video, audio=_sibling_audio(video), speaker=speaker,
                                text=read_transcript(video.with_suffix(".txt"))))
    return items


@dataclass(frozen=True)
class Layout:
    """A registered corpus layout: how to find its items, what it expects below the input folder
    (for the error when nothing is found), and whether its items are audio only."""

    discover: Callable[[Path], list[SourceItem]]
    expected: str
    audio_only: bool = False


LAYOUTS: Registry[Layout] = Registry("layout")


def register_layout(name: str, discover_items: Callable[[Path], list[SourceItem]], expected: str,
                    audio_only: bool = False) -> None:
    """Add a corpus layout to `avdiff prepare --layout`."""
    LAYOUTS.register(name, Layout(discover_items, expected, audio_only))


register_layout("folder", discover_folder, "video files anywhere below it")
register_layout("grid", discover_grid, "s<N>/.../*.mpg")
register_layout("lrs3", discover_lrs3, "{pretrain,trainval,test}/<speaker>/<NNNNN>.mp4")
register_layout("tcd-timit", discover_tcd_timit, "{volunteers,lipspeakers}/<speaker>/Clips/straightcam/*.mp4")


def is_audio_only(layout: str) -> bool:
    """Whether the items of `layout` have no video (the speech layouts)."""
    return LAYOUTS.get(layout).audio_only


def discover(layout: str, root: str | Path) -> list[SourceItem]:
    """The items of corpus `root` laid out as `layout`; InputError if none or ids collide."""
    try:
        entry = LAYOUTS.get(layout)
    except RegistryError as error:
        raise InputError(str(error)) from None
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: input folder not found")
    items = entry.discover(root)
    kind = "audio files" if entry.audio_only else "videos"
    if not items:
        raise InputError(f"{root}: no {kind} found for layout {layout!r} (expected {entry.expected})")
    seen: dict[str, Path] = {}
    for item in items:
        if item.id in seen:
            raise InputError(f"{root}: two {kind} map to the id {item.id!r}: {seen[item.id]} and {item.source}")
        seen[item.id] = item.source
    return items
