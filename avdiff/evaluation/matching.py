"""Pairing of reference, estimate and noisy files by relative path without extension."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from avdiff.errors import InputError
from avdiff.media.files import AUDIO_SUFFIXES


def audio_files_by_id(folder: Path, role: str) -> dict[str, Path]:
    """{relative path without extension (posix): file} for the audio files below `folder`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{role} folder {folder}: no such folder")
    files: dict[str, Path] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES):
        key = path.relative_to(folder).with_suffix("").as_posix()
        if key in files:
            raise InputError(f"{role} folder {folder}: {files[key].name} and {path.name} share the name {key!r}")
        files[key] = path
    if not files:
        raise InputError(f"{role} folder {folder} holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
    return files


@dataclass(frozen=True)
class MatchedItem:
    """One evaluated item: its id and the files that take part."""

    id: str
    reference: Path
    estimate: Path
    noisy: Path | None = None


@dataclass
class Matching:
    """The items found in every given folder, and the names left out with the reason."""

    items: list[MatchedItem]
    missing_in_estimate: list[str] = field(default_factory=list)
    extra_in_estimate: list[str] = field(default_factory=list)
    missing_in_noisy: list[str] = field(default_factory=list)

    def unmatched(self) -> dict[str, list[str]]:
        return {"missing_in_estimate": self.missing_in_estimate, "extra_in_estimate": self.extra_in_estimate,
                "missing_in_noisy": self.missing_in_noisy}

    def describe(self) -> list[str]:
        """One line per non-empty group of unmatched names (at most 5 named)."""
        lines = []
        for kind, names in self.unmatched().items():
            if names:
                shown = ", ".join(names[:5]) + (f", ... ({len(names) - 5} more)" if len(names) > 5 else "")
                lines.append(f"{kind.replace('_', ' ')}: {len(names)} file(s): {shown}")
        return lines


def match_folders(reference: Path, estimate: Path, noisy: Path | None = None) -> Matching:
    """Match files by relative path without extension; an item needs all given folders.

    Raises InputError when a folder is missing or empty, or nothing matches.
    """
    refs = audio_files_by_id(reference, "reference")
    ests = audio_files_by_id(estimate, "estimate")
    noisies = audio_files_by_id(noisy, "noisy") if noisy is not None else None
    common = sorted(set(refs) & set(ests))
    matching = Matching(items=[], missing_in_estimate=sorted(set(refs) - set(ests)),
                        extra_in_estimate=sorted(set(ests) - set(refs)))
    if noisies is not None:
        matching.missing_in_noisy = [key for key in common if key not in noisies]
        common = [key for key in common if key in noisies]
    if not common:
        example = f"e.g. reference {next(iter(refs))!r}, estimate {next(iter(ests))!r}"
        folders = f"{reference} and {estimate}" + (f" and {noisy}" if noisy is not None else "")
        raise InputError(f"no file names in common between {folders} ({example}); files are matched by "
                         "relative path without extension")
    matching.items = [MatchedItem(key, refs[key], ests[key], noisies[key] if noisies else None) for key in common]
    return matching
