"""Classic baselines to evaluate beside a model: noisereduce's spectral gating."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from avdiff.evaluation.matching import audio_files_by_id
from avdiff.evaluation.signals import require_module
from avdiff.media import SAMPLE_RATE, load_audio

# noisereduce.reduce_noise defaults: non-stationary spectral gating (n_fft 1024, 2 s time constant).
NOISEREDUCE_SETTINGS: dict = {"stationary": False}


def noisereduce_file(noisy: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Spectral gating (noisereduce.reduce_noise with its defaults) of one mono signal; same length."""
    noisereduce = require_module("noisereduce")
    samples = np.asarray(noisy, dtype=np.float32)
    out = noisereduce.reduce_noise(y=samples, sr=sample_rate, n_jobs=1, **NOISEREDUCE_SETTINGS)
    return np.asarray(out, dtype=np.float32)[: samples.size]


def noisereduce_folder(noisy: Path, output: Path, overwrite: bool = False) -> Path:
    """Run noisereduce on every audio file below `noisy` into `output` (same relative names, 16 kHz float WAV).

    Files already in `output` are kept unless `overwrite`. Returns `output`.
    """
    require_module("noisereduce")
    output = Path(output)
    for key, path in audio_files_by_id(Path(noisy), "noisy").items():
        target = output / f"{key}.wav"
        if target.exists() and not overwrite:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        enhanced = noisereduce_file(load_audio(path, SAMPLE_RATE), SAMPLE_RATE)
        tmp = target.with_name(f".{target.name}.tmp.wav")
        sf.write(str(tmp), enhanced, SAMPLE_RATE, subtype="FLOAT")
        tmp.replace(target)
    return output
