"""GRID sentences to synthesise: command colour preposition letter digit adverb ("bin blue at f two now").

The word lists and GRID's file-name code are `avdiff.grid_grammar`'s. 4 x 4 x 4 x 25 x 10 x 4 =
64,000 sentences. A sentence is identified by its index in mixed radix (`Sentence.index`) and by
GRID's six-character code ("bbaf2n"). `spoken_text` is what espeak-ng reads: the transcript itself
except letters, written so that espeak-ng says the letter's name ("a" alone would be read as the
article /@/).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avdiff.grid_grammar import LETTERS, NUM_SENTENCES, SLOTS, code_of

# The letter names as espeak-ng reads them in running text (checked with espeak_TextToPhonemes).
LETTER_SPOKEN = {letter: letter.upper() for letter in LETTERS}
LETTER_SPOKEN["a"] = "eh"  # "A" between words is still read as the article


@dataclass(frozen=True)
class Sentence:
    """One GRID sentence: the index of the word chosen in each of the six slots."""

    choice: tuple[int, int, int, int, int, int]

    def __post_init__(self) -> None:
        if len(self.choice) != len(SLOTS) or any(not 0 <= c < len(s) for c, s in zip(self.choice, SLOTS)):
            raise ValueError(f"not a GRID sentence choice: {self.choice}")

    @classmethod
    def from_index(cls, index: int) -> Sentence:
        if not 0 <= index < NUM_SENTENCES:
            raise ValueError(f"sentence index {index} outside 0..{NUM_SENTENCES - 1}")
        choice = []
        for slot in reversed(SLOTS):
            index, digit = divmod(index, len(slot))
            choice.append(digit)
        return cls(tuple(reversed(choice)))  # type: ignore[arg-type]

    @classmethod
    def from_text(cls, text: str) -> Sentence:
        words = text.lower().split()
        if len(words) != len(SLOTS) or any(w not in s for w, s in zip(words, SLOTS)):
            raise ValueError(f"not a GRID sentence: {text!r}")
        return cls(tuple(s.index(w) for w, s in zip(words, SLOTS)))  # type: ignore[arg-type]

    @property
    def index(self) -> int:
        index = 0
        for digit, slot in zip(self.choice, SLOTS):
            index = index * len(slot) + digit
        return index

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(slot[c] for c, slot in zip(self.choice, SLOTS))

    @property
    def text(self) -> str:
        """The transcript, GRID style: "bin blue at f two now"."""
        return " ".join(self.words)

    @property
    def spoken_text(self) -> str:
        """What espeak-ng is given (letter slot spelled so that its name is said)."""
        words = list(self.words)
        words[3] = LETTER_SPOKEN[words[3]]
        return " ".join(words)

    @property
    def code(self) -> str:
        """GRID's file-name code: "bbaf2n" (see `avdiff.grid_grammar.code_of`)."""
        return code_of(self.words)


def sentence_order(rng: np.random.Generator) -> np.ndarray:
    """A random permutation of all sentence indices (utterance i speaks entry i mod 64000)."""
    return rng.permutation(NUM_SENTENCES)
