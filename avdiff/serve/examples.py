"""Examples to click on the `avdiff serve` page, made by the package itself, so a newcomer needs
no clip of their own: one synthetic utterance (`avdiff synth`'s speech and mouth rendering) as
mouth crops for video-to-speech, and the same speech mixed with generated noise for enhancement.

The files are written once into a cache folder (each atomically, so two servers starting
together never read half a file) and reused afterwards. The default folder lies in the system's
temporary directory, from which Gradio serves files without further permission.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avdiff import __version__
from avdiff.demo.mixing import generated_noise, mix_at_snr
from avdiff.media.audio import write_wav
from avdiff.media.files import write_npy
from avdiff.timegrid import SAMPLE_RATE

logger = logging.getLogger(__name__)

SENTENCE = "bin blue at f two now"  # a GRID sentence, as the shipped v2s model was trained on
SEED = 0  # the speaker's voice and looks, the utterance's timing and the noise
SNR_DB = 5.0  # of the noisy mixture
MOUTH_NAME, NOISY_NAME = "mouth.npy", "noisy.wav"


@dataclass(frozen=True)
class ServeExamples:
    """The example files: mouth crops of a synthetic utterance and a noisy mixture of its speech."""

    mouth: Path  # uint8 (frames, 88, 88) mouth crops at 25 fps, as `avdiff synth` writes them
    noisy: Path  # 16 kHz mono: the same speech plus generated noise at SNR_DB
    text: str  # what is said


def default_folder() -> Path:
    """Where the examples are kept: per avdiff version and seed, in the system's temporary directory."""
    return Path(tempfile.gettempdir()) / "avdiff-serve-examples" / f"{__version__}-seed{SEED}"


def make_examples(folder: Path) -> ServeExamples:
    """The example files in `folder`: synthesised the first time (a second or two), reused after."""
    examples = ServeExamples(mouth=folder / MOUTH_NAME, noisy=folder / NOISY_NAME, text=SENTENCE)
    if examples.mouth.is_file() and examples.noisy.is_file():
        return examples
    from avdiff.synth import Sentence, make_utterance  # espeak-ng loads only when there is something to make
    from avdiff.synth.speakers import make_speaker

    utterance = make_utterance(Sentence.from_text(SENTENCE), make_speaker(SEED, 0), SEED)
    noise = generated_noise(len(utterance.audio), np.random.default_rng(SEED))
    noisy, _ = mix_at_snr(utterance.audio, noise, SNR_DB)
    folder.mkdir(parents=True, exist_ok=True)
    write_npy(examples.mouth, utterance.video)
    write_wav(examples.noisy, noisy, SAMPLE_RATE)
    return examples


def examples_or_none(folder: Path | None = None) -> ServeExamples | None:
    """`make_examples` in `folder` (default: `default_folder()`), or None with a warning when they
    cannot be made here (e.g. no espeak-ng): the page then opens without examples."""
    try:
        return make_examples(folder or default_folder())
    except Exception as error:  # noqa: BLE001 - examples are a convenience; the page works without them
        logger.warning("avdiff serve: the page opens without examples: cannot make them (%s: %s)",
                       type(error).__name__, error)
        return None
