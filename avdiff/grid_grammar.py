"""The GRID sentence grammar (Cooke et al. 2006): its word lists and its six-character file-name code.

A sentence is command colour preposition letter digit adverb ("bin blue at f two now"); the
letter slot has no "w". GRID names each file by a code of one character per word: the first
letter of the command, colour, preposition and adverb, the letter itself, and the digit
("z" for zero): "bbaf2n", "bbizzn". This module is the one place these are written;
`avdiff.synth.grammar` (sentences to synthesise) and `avdiff.prepare.layouts` (transcripts from
GRID file names) both build on it. It imports nothing from avdiff.
"""

from __future__ import annotations

import math

COMMANDS = ("bin", "lay", "place", "set")
COLOURS = ("blue", "green", "red", "white")
PREPOSITIONS = ("at", "by", "in", "with")
LETTERS = tuple("abcdefghijklmnopqrstuvxyz")
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ADVERBS = ("again", "now", "please", "soon")
SLOTS: tuple[tuple[str, ...], ...] = (COMMANDS, COLOURS, PREPOSITIONS, LETTERS, DIGITS, ADVERBS)
SLOT_NAMES = ("command", "colour", "preposition", "letter", "digit", "adverb")
NUM_SENTENCES = math.prod(len(slot) for slot in SLOTS)  # 64000
VOCABULARY: tuple[str, ...] = tuple(word for slot in SLOTS for word in slot)


def _code_char(slot: tuple[str, ...], word: str) -> str:
    """The character that stands for `word` of `slot` in a GRID file name."""
    if slot is DIGITS:
        return "z" if word == "zero" else str(DIGITS.index(word))
    return word[0]


# {code character: word}, one table per slot
CODE_TABLES: tuple[dict[str, str], ...] = tuple({_code_char(slot, word): word for word in slot} for slot in SLOTS)
assert all(len(table) == len(slot) for table, slot in zip(CODE_TABLES, SLOTS)), "GRID code characters must be unique"


def code_of(words: tuple[str, ...] | list[str]) -> str:
    """GRID's file-name code of a sentence's six words: ("bin", "blue", "at", "f", "two", "now") -> "bbaf2n"."""
    return "".join(_code_char(slot, word) for slot, word in zip(SLOTS, words, strict=True))


def words_of_code(code: str) -> tuple[str, ...] | None:
    """The six words a GRID file-name code stands for ("bbaf2n" -> bin blue at f two now), or None."""
    if len(code) != len(SLOTS):
        return None
    words = [table.get(char) for table, char in zip(CODE_TABLES, code.lower())]
    return tuple(words) if all(words) else None  # type: ignore[arg-type]
