"""Audio-only corpora for `avdiff prepare`: clean speech that trains the audio-only prior.

- `speech`: any tree of audio files (`avdiff.media.files.AUDIO_SUFFIXES`, any rate and channel
  count). Speaker: a LibriSpeech-style name `<speaker>-<chapter>-<utt>` gives `<speaker>`, else
  the parent folder. Transcript: a `transcripts.tsv` / `*.tsv` in the input folder
  (`<path relative to it><TAB><text>`), else a `.trans.txt` in the file's folder
  (`<stem> <text>` lines, LibriSpeech's), else a sibling `<stem>.txt`.
- `librispeech`: `<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac` with
  `<speaker>-<chapter>.trans.txt` (a `LibriSpeech/<subset>/` folder or the subset itself).
- `vctk`: `wav48*/<speaker>/<name>.{wav,flac}` (one microphone, `_mic1`, when both are present)
  with transcripts in `txt/<speaker>/<name>.txt`.
"""

from __future__ import annotations

import re
from pathlib import Path

from avdiff.media.files import AUDIO_SUFFIXES
from avdiff.prepare.layouts import SourceItem, register_layout

LIBRISPEECH_NAME = re.compile(r"^(\d+)-(\d+)-(\d+)$")


def _audio_files(root: Path) -> list[Path]:
    """Audio files below root; broken symlinks are kept so that they are reported, not lost."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and (p.is_file() or p.is_symlink()))


def read_tsv_transcripts(root: Path) -> dict[str, str]:
    """`relative/path.flac -> text` from every `*.tsv` in root (path TAB text; other lines ignored)."""
    texts: dict[str, str] = {}
    for table in sorted(root.glob("*.tsv")):
        for line in table.read_text(encoding="utf-8", errors="replace").splitlines():
            path, sep, text = line.partition("\t")
            if sep and text.strip():
                texts[Path(path.strip()).as_posix()] = " ".join(text.split())
    return texts


def read_trans_txt(folder: Path) -> dict[str, str]:
    """`stem -> text` from the LibriSpeech `*.trans.txt` files of a folder."""
    texts: dict[str, str] = {}
    for table in sorted(folder.glob("*.trans.txt")):
        for line in table.read_text(encoding="utf-8", errors="replace").splitlines():
            stem, _, text = line.strip().partition(" ")
            if stem and text.strip():
                texts[stem] = " ".join(text.split())
    return texts


def _text_file(path: Path) -> str | None:
    """A transcript file's words, whitespace-collapsed (None when absent or empty)."""
    if not path.is_file():
        return None
    return " ".join(path.read_text(encoding="utf-8", errors="replace").split()) or None


def _speaker(root: Path, audio: Path) -> str:
    match = LIBRISPEECH_NAME.match(audio.stem)
    if match:
        return match.group(1)
    parent = audio.parent.relative_to(root).as_posix()
    return parent if parent != "." else root.name


def discover_speech(root: Path) -> list[SourceItem]:
    """Any folder of audio files (see the module docstring for speakers and transcripts)."""
    table = read_tsv_transcripts(root)
    folder_texts: dict[Path, dict[str, str]] = {}
    items = []
    for audio in _audio_files(root):
        relative = audio.relative_to(root)
        if audio.parent not in folder_texts:
            folder_texts[audio.parent] = read_trans_txt(audio.parent)
        text = table.get(relative.as_posix()) or folder_texts[audio.parent].get(audio.stem) or _text_file(audio.with_suffix(".txt"))
        items.append(SourceItem(id=relative.with_suffix("").as_posix(), video=None, audio=audio,
                                speaker=_speaker(root, audio), text=text))
    return items


def discover_librispeech(root: Path) -> list[SourceItem]:
    """LibriSpeech: `<speaker>/<chapter>/*.flac` + `.trans.txt`, ids `<speaker>/<chapter>/<name>`."""
    items = []
    for folder in sorted({audio.parent for audio in root.rglob("*.flac")}):
        texts = read_trans_txt(folder)
        for audio in sorted(folder.glob("*.flac")):
            match = LIBRISPEECH_NAME.match(audio.stem)
            if not match:
                continue
            speaker, chapter, _ = match.groups()
            items.append(SourceItem(id=f"{speaker}/{chapter}/{audio.stem}", video=None, audio=audio,
                                    speaker=speaker, text=texts.get(audio.stem)))
    return items


def discover_vctk(root: Path) -> list[SourceItem]:
    """VCTK: `wav48*/<speaker>/<name>.{wav,flac}` and `txt/<speaker>/<name>.txt`; one microphone."""
    items = []
    for wav_dir in sorted(p for p in root.glob("wav48*") if p.is_dir()):
        for audio in _audio_files(wav_dir):
            stem = audio.stem
            if stem.endswith("_mic2") and audio.with_name(stem[:-5] + "_mic1" + audio.suffix).exists():
                continue
            name = stem.removesuffix("_mic1").removesuffix("_mic2")
            speaker = audio.parent.name
            text = _text_file(root / "txt" / speaker / f"{name}.txt")
            items.append(SourceItem(id=f"{speaker}/{name}", video=None, audio=audio, speaker=speaker, text=text))
    return items


register_layout("speech", discover_speech, "audio files anywhere below it", audio_only=True)
register_layout("librispeech", discover_librispeech, "<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac",
                audio_only=True)
register_layout("vctk", discover_vctk, "wav48*/<speaker>/*.wav and txt/<speaker>/*.txt", audio_only=True)
