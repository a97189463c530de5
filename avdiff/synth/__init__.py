"""`avdiff synth`: a synthetic GRID-style audio-visual speech corpus (DESIGN.md section 6).

Modules, one job each: `grammar` (GRID sentences), `speakers` (voices and looks), `espeak`
(espeak-ng through ctypes: waveform + phoneme events), `visemes` (phoneme -> articulator
trajectories with coarticulation), `render` (mouth frames), `utterance` (one aligned clip),
`corpus` (plan, splits, parallel workers, files).
"""

from avdiff.synth.corpus import SynthSettings, plan_corpus, synthesize_corpus
from avdiff.synth.grammar import Sentence
from avdiff.synth.speakers import Speaker, make_speakers
from avdiff.synth.utterance import Utterance, make_utterance

__all__ = ["Sentence", "Speaker", "SynthSettings", "Utterance", "make_speakers", "make_utterance",
           "plan_corpus", "synthesize_corpus"]
