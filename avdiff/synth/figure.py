"""The README picture: a strip of synthetic mouth frames above the spectrogram of the same utterance.

    python -m avdiff.synth.figure --output docs/images/synth_example.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from avdiff.timegrid import SAMPLE_RATE, VIDEO_FPS
from avdiff.synth.grammar import Sentence
from avdiff.synth.speakers import make_speakers
from avdiff.synth.utterance import Utterance, make_utterance


def plot_utterance(utterance: Utterance, title: str, output: Path, frames: int = 10) -> None:
    """Mouth frames at evenly spaced times over the speech, the spectrogram below, word boundaries."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start, end = utterance.words[0][1] - 0.08, utterance.words[-1][2] + 0.08
    labels: dict[int, str] = {}  # frame at the centre of each phoneme -> that phoneme
    for name, a, b in utterance.phonemes:
        if not name.startswith("_"):
            labels.setdefault(int((a + b) / 2 * VIDEO_FPS), _ipa(name))
    centres = np.array(sorted(labels))
    picks = centres[np.unique(np.linspace(0, len(centres) - 1, min(frames, len(centres))).round().astype(int))]
    dpi, left, right = 100, 0.06, 0.98
    width_in = len(picks) * utterance.video.shape[2] / dpi / (right - left)  # frames at their own pixels
    strip_height_in = (right - left) * width_in / len(picks)  # square frames
    height_in = strip_height_in + 2.3
    fig = plt.figure(figsize=(width_in, height_in), dpi=dpi)
    strip = fig.add_axes((left, 1 - (strip_height_in + 0.3) / height_in, right - left, strip_height_in / height_in))
    strip.imshow(np.concatenate(list(utterance.video[picks]), axis=1), cmap="gray", vmin=0, vmax=255,
                 extent=(0, len(picks), 0, 1), aspect="auto", interpolation="nearest")
    strip.set_xticks(np.arange(len(picks)) + 0.5,
                     [f"/{labels[j]}/" for j in picks], fontsize=8)
    strip.set_yticks([])
    strip.tick_params(length=0)
    strip.set_title(title, fontsize=10)
    spec = fig.add_axes((left, 0.45 / height_in, right - left, 1.35 / height_in))
    n_fft, hop = 512, 128
    audio = utterance.audio[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)]
    window = np.hanning(n_fft).astype(np.float32)
    count = 1 + max(0, (audio.size - n_fft) // hop)
    frames_ = np.stack([audio[i * hop: i * hop + n_fft] * window for i in range(count)])
    power = 20 * np.log10(np.abs(np.fft.rfft(frames_, axis=1)).T + 1e-6)
    spec.imshow(power, origin="lower", aspect="auto", cmap="magma", vmin=power.max() - 80, vmax=power.max(),
                extent=(start, start + count * hop / SAMPLE_RATE, 0, SAMPLE_RATE / 2000))
    for word, w_start, w_end in utterance.words:
        spec.axvline(w_start, color="white", lw=0.6, alpha=0.6)
        spec.text((w_start + w_end) / 2, 7.3, word, color="white", ha="center", va="top", fontsize=9)
    spec.set_xlabel("time (s)", fontsize=8)
    spec.set_ylabel("kHz", fontsize=8)
    spec.tick_params(labelsize=7)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output)
    plt.close(fig)


# espeak-ng mnemonics -> IPA, for the labels
_IPA = {"I": "ɪ", "E": "ɛ", "a": "æ", "a#": "ə", "@": "ə", "u:": "uː", "i:": "iː", "aU": "aʊ", "aI": "aɪ",
        "eI": "eɪ", "oU": "oʊ", "V": "ʌ", "A:": "ɑː", "O:": "ɔː", "U": "ʊ", "T": "θ", "D": "ð", "S": "ʃ",
        "Z": "ʒ", "tS": "tʃ", "dZ": "dʒ", "N": "ŋ", "t#": "ɾ", "r": "ɹ", "A@": "ɑɹ", "i@": "ɪə", "o@": "ɔɹ"}


def _ipa(mnemonic: str) -> str:
    key = mnemonic.lstrip("',")
    return _IPA.get(key, key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=Path("docs/images/synth_example.png"))
    parser.add_argument("--text", default="bin blue at f two now")
    parser.add_argument("--speaker", type=int, default=2, help="speaker index (seed 0)")
    args = parser.parse_args()
    speaker = make_speakers(0, args.speaker + 1)[args.speaker]
    utterance = make_utterance(Sentence.from_text(args.text), speaker, seed=1)
    plot_utterance(utterance, f'"{args.text}" — speaker {speaker.id} (espeak-ng {speaker.voice.voice_name}), '
                   "mouth frames (25 fps) at phoneme centres", args.output)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
