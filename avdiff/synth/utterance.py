"""One synthetic audio-visual utterance: speech from espeak-ng, lips rendered from its phonemes.

The clip is laid out on avdiff's time grid: a random lead-in silence, the speech, a random
tail, padded to a whole number of 25 fps frames, so the audio is exactly
`num_frames * SAMPLES_PER_FRAME` samples at 16 kHz and audio samples [640 j, 640 j + 640)
belong to video frame j. Phoneme times come from espeak-ng's own events (in samples of its
22.05 kHz output) shifted by the lead-in, so the mouth moves when the sound does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avdiff.media.audio import resample
from avdiff.timegrid import SAMPLE_RATE, SAMPLES_PER_FRAME, VIDEO_FPS
from avdiff.synth.espeak import synthesize
from avdiff.synth.grammar import Sentence
from avdiff.synth.render import random_nuisance, render_mouth
from avdiff.synth.speakers import Speaker
from avdiff.synth.visemes import frame_trajectories, segments_from_phonemes

LEAD_RANGE_S = (0.25, 0.5)  # silence before the speech
TRAIL_RANGE_S = (0.25, 0.5)  # silence after it
SPEECH_LEVEL_DBFS = -24.0  # RMS of the voiced part (random +-2 dB per utterance)
NOISE_FLOOR_DBFS = (-75.0, -65.0)  # a recording's noise floor (also keeps silence off exact zero)


@dataclass(frozen=True)
class Utterance:
    audio: np.ndarray  # float32 (num_frames * 640,) at 16 kHz
    video: np.ndarray  # uint8 (num_frames, size, size) at 25 fps
    params: np.ndarray  # float32 (num_frames, 7): the articulator values that were rendered
    phonemes: list[tuple[str, float, float]]  # espeak-ng mnemonic, start s, end s (clip time)
    words: list[tuple[str, float, float]]  # transcript word, start s, end s

    @property
    def num_frames(self) -> int:
        return int(self.video.shape[0])


def make_utterance(sentence: Sentence, speaker: Speaker, seed: int, size: int = 88) -> Utterance:
    """Speak `sentence` with `speaker`'s voice and render `speaker`'s mouth saying it."""
    rng = np.random.default_rng(seed)
    speech = synthesize(sentence.spoken_text, speaker.voice, seed=int(rng.integers(2**31)))
    audio16 = resample(speech.samples, speech.sample_rate, SAMPLE_RATE)
    lead = int(round(rng.uniform(*LEAD_RANGE_S) * SAMPLE_RATE))
    trail = int(round(rng.uniform(*TRAIL_RANGE_S) * SAMPLE_RATE))
    num_frames = -(-(lead + audio16.size + trail) // SAMPLES_PER_FRAME)
    audio = np.zeros(num_frames * SAMPLES_PER_FRAME, np.float32)

    to_clip = lambda sample: lead / SAMPLE_RATE + sample / speech.sample_rate  # noqa: E731
    phonemes = [(p.name, to_clip(p.start), to_clip(p.end)) for p in speech.phonemes]
    voiced = np.zeros(audio16.size, bool)
    for p in speech.phonemes:
        if not p.name.startswith("_"):
            voiced[p.start * SAMPLE_RATE // speech.sample_rate: p.end * SAMPLE_RATE // speech.sample_rate] = True
    rms = float(np.sqrt(np.mean(np.square(audio16[voiced])))) if voiced.any() else 0.0
    if rms > 0:
        gain = 10 ** ((SPEECH_LEVEL_DBFS + rng.uniform(-2.0, 2.0)) / 20) / rms
        gain = min(gain, 0.9 / max(float(np.abs(audio16).max()), 1e-9))  # never clip
        audio[lead:lead + audio16.size] = audio16 * gain
    floor = 10 ** (rng.uniform(*NOISE_FLOOR_DBFS) / 20)
    audio += (floor * rng.standard_normal(audio.size)).astype(np.float32)

    words: list[tuple[str, float, float]] = []
    for index, word in enumerate(sentence.words):
        spans = [(to_clip(p.start), to_clip(p.end)) for p in speech.phonemes if p.word == index]
        if spans:
            words.append((word, min(s for s, _ in spans), max(e for _, e in spans)))

    # the mouth rests during the lead-in and the tail
    clip_end = num_frames / VIDEO_FPS
    timeline = [("_", 0.0, phonemes[0][1] if phonemes else clip_end), *phonemes]
    if phonemes:
        timeline.append(("_", phonemes[-1][2], clip_end))
    params = frame_trajectories(segments_from_phonemes(timeline), num_frames, VIDEO_FPS)
    video = render_mouth(params, speaker.appearance, random_nuisance(rng, num_frames), rng, size=size)
    return Utterance(audio=audio, video=video, params=params, phonemes=phonemes, words=words)
