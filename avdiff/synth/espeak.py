"""espeak-ng through ctypes, from the `espeakng-loader` wheel: waveform + phoneme events.

The library and its data come from the wheel (no system install). `espeak_Initialize` with
option 0x0001 (espeakINITIALIZE_PHONEME_EVENTS) makes the synthesis callback report one
PHONEME event (type 7) per phoneme, whose `sample` field is the offset of the phoneme's start
in the 22.05 kHz output; a phoneme lasts until the next event (the last one until the end of the
message). The library is loaded afresh for every utterance and its noise generator re-seeded
(`espeak_ng_SetRandSeed`), so an utterance's waveform depends only on its text, voice settings
and seed, not on what the process synthesised before (see `_Library`).
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avdiff.errors import AVDiffError, InputError

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED, _EVENT_WORD, _EVENT_PHONEME = 0, 1, 7
# espeak_PARAMETER
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7

RATE_LIMITS = (80, 450)  # words per minute accepted by espeak-ng


class _Event(ctypes.Structure):
    """espeak_EVENT (speak_lib.h); `id` is a union whose PHONEME member is char string[8]."""

    _fields_ = [
        ("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
        ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Phoneme:
    """One phoneme of the output: espeak-ng mnemonic (stress marks kept) and its sample span."""

    name: str
    start: int  # first sample (at `Synthesis.sample_rate`)
    end: int  # one past the last sample
    word: int  # index of the word it belongs to (0-based), -1 for leading/trailing pauses


@dataclass(frozen=True)
class Synthesis:
    samples: np.ndarray  # float32 in [-1, 1], mono
    sample_rate: int
    phonemes: tuple[Phoneme, ...]


@dataclass(frozen=True)
class VoiceSettings:
    """How espeak-ng speaks: language voice + variant, and the prosody parameters."""

    language: str = "en-us"
    variant: str = ""  # a file of espeak-ng-data/voices/!v (e.g. "m3", "f2"); "" = the plain voice
    rate: int = 175  # words per minute (espeak-ng default 175)
    pitch: int = 50  # base pitch, 0..99 (default 50)
    pitch_range: int = 50  # pitch range, 0..99 (default 50; 0 = monotone)
    word_gap: int = 0  # extra pause between words, in units of 10 ms at the default rate

    @property
    def voice_name(self) -> str:
        return f"{self.language}+{self.variant}" if self.variant else self.language


def data_path() -> Path:
    """espeak-ng-data inside the espeakng-loader wheel."""
    try:
        import espeakng_loader
    except ImportError as error:
        raise AVDiffError("avdiff synth needs espeak-ng from the espeakng-loader wheel: "
                          "pip install 'avdiff[synth]'") from error
    return Path(espeakng_loader.get_data_path())


def available_variants() -> list[str]:
    """Voice variants shipped with the wheel (names usable as `VoiceSettings.variant`)."""
    return sorted(p.name for p in (data_path() / "voices" / "!v").iterdir() if p.is_file())


def check_settings(settings: VoiceSettings) -> None:
    """Raise InputError naming the bad field (unknown variant, out-of-range parameter)."""
    if settings.variant and settings.variant not in available_variants():
        known = ", ".join(v for v in available_variants() if len(v) <= 3 or v[0].isupper())
        raise InputError(f"unknown espeak-ng voice variant {settings.variant!r}; known variants include {known} "
                         f"(all: {data_path() / 'voices' / '!v'})")
    if not RATE_LIMITS[0] <= settings.rate <= RATE_LIMITS[1]:
        raise InputError(f"speaking rate {settings.rate} wpm outside espeak-ng's {RATE_LIMITS[0]}..{RATE_LIMITS[1]}")
    for name in ("pitch", "pitch_range"):
        if not 0 <= getattr(settings, name) <= 99:
            raise InputError(f"{name} {getattr(settings, name)} outside 0..99")
    if settings.word_gap < 0:
        raise InputError(f"word_gap must be >= 0, got {settings.word_gap}")


class _Library:
    """One private load of libespeak-ng: initialised on entry, terminated and unloaded on exit.

    espeak-ng keeps synthesis state in static variables that neither `espeak_Initialize` nor
    the random seed reset (pitch flutter phase, glottal source, AGC, ...), so an utterance would
    depend on what the process synthesised before it. Loading the library afresh for each
    utterance (dlopen/dlclose, ~2 ms) starts every utterance from the same state, which makes a
    corpus byte-identical whatever the number of worker processes.
    """

    def __enter__(self) -> _Library:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.lib = lib
        self.sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_path()).encode(),
                                                 _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT)
        if self.sample_rate <= 0:
            self._unload()
            raise AVDiffError(f"espeak-ng failed to initialise with the data in {data_path()}")
        self.chunks: list[np.ndarray] = []
        self.events: list[tuple[int, int, bytes]] = []
        self._callback = _CALLBACK(self._on_audio)  # kept referenced while the library holds it
        lib.espeak_SetSynthCallback(self._callback)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.lib.espeak_Terminate()
        self._unload()

    def _unload(self) -> None:
        import _ctypes

        close = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary")
        close(self.lib._handle)

    def _on_audio(self, wav, num_samples, events) -> int:
        if num_samples > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type in (_EVENT_PHONEME, _EVENT_WORD):
                self.events.append((event.type, event.sample, bytes(event.id) if event.type == _EVENT_PHONEME else b""))
            i += 1
        return 0


_LOCK = threading.Lock()  # espeak-ng is one global state per loaded library


def synthesize(text: str, settings: VoiceSettings, seed: int = 0) -> Synthesis:
    """Speak `text` (plain text) with `settings`; returns the 22.05 kHz waveform and phoneme spans.

    The result depends only on the arguments (see `_Library`).
    """
    check_settings(settings)
    data = text.encode("utf-8") + b"\0"
    with _LOCK, _Library() as espeak:
        lib = espeak.lib
        if lib.espeak_SetVoiceByName(settings.voice_name.encode()) != 0:
            raise InputError(f"espeak-ng cannot load the voice {settings.voice_name!r}")
        for parameter, value in ((_RATE, settings.rate), (_PITCH, settings.pitch),
                                 (_RANGE, settings.pitch_range), (_WORDGAP, settings.word_gap),
                                 (_VOLUME, 100)):
            lib.espeak_SetParameter(parameter, int(value), 0)
        lib.espeak_ng_SetRandSeed(int(seed) & 0x7FFFFFFF)
        status = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != 0:
            raise AVDiffError(f"espeak-ng failed to synthesise {text!r} (status {status})")
        chunks, events, rate = espeak.chunks, espeak.events, espeak.sample_rate
    samples = (np.concatenate(chunks) if chunks else np.zeros(0, np.int16)).astype(np.float32) / 32768.0
    return Synthesis(samples=samples, sample_rate=rate, phonemes=_phoneme_spans(events, samples.size))


def _phoneme_spans(events: list[tuple[int, int, bytes]], total: int) -> tuple[Phoneme, ...]:
    """PHONEME events -> spans [start, next start); WORD events number the words."""
    starts: list[tuple[int, str, int]] = []
    word = -1
    for kind, sample, raw in events:
        if kind == _EVENT_WORD:
            word += 1
        elif kind == _EVENT_PHONEME:
            name = raw.split(b"\0", 1)[0].decode("ascii", errors="replace")
            if name:
                starts.append((min(max(sample, 0), total), name, word))
    phonemes = []
    for i, (start, name, word_index) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else total
        if end > start:
            phonemes.append(Phoneme(name, start, end, word_index if not name.startswith("_") else -1))
    return tuple(phonemes)
