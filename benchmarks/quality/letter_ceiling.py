"""How many GRID letters can the recogniser read at all, and does the video rate lose any?

Issue 24 asks for letters at least 0.6 from the lips. Before training for it, two ceilings that
need no network: the recogniser on the clean synthetic speech itself, and on a rendition of the
speech's true log-mel envelope (`avdiff.audio.rendition.render`, the sampler's start) drawn either
at the STFT frame rate (125 Hz) or held over each video frame (25 Hz, what the lips predict and
the score network reads). If the 25 Hz rendition reads the letters as well as the 125 Hz one, an
envelope at the STFT rate is not the lever; if both read about as well as the clean speech, the
envelope carries every letter the recogniser can hear.

    .venv/bin/python -m benchmarks.quality.letter_ceiling --test data/synth-v2s-tune3/manifest.jsonl \\
        --train data/synth-v2s/train.jsonl data/synth-v2s-32spk/train.jsonl ... --clips 133 \\
        --output benchmarks/results/letter-ceiling/tune
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from benchmarks.common.record import record
from benchmarks.common.rows import mean_ci, mean_ci_values
from benchmarks.quality.lips_matter import Scorer, clip_inputs, new_sentence_items, true_envelope_stft

SYSTEMS = ("clean speech", "rendition, STFT rate", "rendition, video rate")
METRICS = ("wer_grid", "slot_letter", "slot_digit")


def video_rate(envelope: torch.Tensor) -> torch.Tensor:
    """(1, E, T) envelope -> the same with each video frame's mean held over its STFT frames."""
    from avdiff.audio.envelope import per_video_frame
    from avdiff.timegrid import STFT_FRAMES_PER_VIDEO_FRAME as PER_FRAME

    frames = envelope.shape[-1]
    video_frames = -(-frames // PER_FRAME)
    mask = torch.ones(1, frames, dtype=torch.bool)
    means = per_video_frame(envelope, mask, video_frames, PER_FRAME)[0]
    return means.repeat_interleave(PER_FRAME, dim=-1)[..., :frames]


def clip_systems(pipeline, clean: np.ndarray, pitch_hz: float, seed: int) -> dict[str, np.ndarray]:
    """The three waveforms of one clip: the clean speech and its envelope's two renditions."""
    from avdiff.audio.rendition import render

    envelope = true_envelope_stft(pipeline, clean)
    waves = {SYSTEMS[0]: clean}
    for name, drawn in zip(SYSTEMS[1:], (envelope, video_rate(envelope))):
        generator = torch.Generator().manual_seed(seed)
        waves[name] = render(drawn[0], pipeline.transform, pitch_hz, len(clean), generator).numpy()
    return waves


@torch.no_grad()
def score(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    """system -> metric -> per-clip values on the first `--clips` new-sentence clips."""
    from avdiff.pipeline.loading import load_pipeline

    torch.set_num_threads(args.threads)
    pipeline = load_pipeline(args.model)
    pitch_hz = args.pitch or pipeline.generation_plan().sampler.pitch_hz
    scorer = Scorer(None)
    values = {system: {metric: [] for metric in METRICS} for system in SYSTEMS}
    for index, item in enumerate(new_sentence_items(args.test, args.train, args.clips)):
        clean, _ = clip_inputs(args.test, item)
        for system, wave in clip_systems(pipeline, clean, pitch_hz, args.seed + index).items():
            scores = scorer(clean, wave, item["text"], metrics=())
            for metric in METRICS:
                values[system][metric].append(float(scores.get(metric, 0.0)))
    return values


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/v2s-context", help="the pipeline whose STFT and envelope bands are used")
    parser.add_argument("--test", type=Path, required=True, help="test manifest of a synthetic corpus")
    parser.add_argument("--train", type=Path, nargs="+", required=True, help="training manifests: their sentences are left out")
    parser.add_argument("--clips", type=int, default=36, help="new-sentence clips scored")
    parser.add_argument("--pitch", type=float, default=None, help="the renditions' pitch in Hz (default: the model's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the renditions' noise (plus the clip's index)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--output", type=Path, required=True, help="folder of record.json")
    args = parser.parse_args(argv)
    values = score(args)
    results = {system: {metric: mean_ci_values(v) for metric, v in metrics.items()} for system, metrics in values.items()}
    for system, metrics in values.items():
        print(f"{system}: " + ", ".join(f"{metric} {mean_ci(v)}" for metric, v in metrics.items()), flush=True)
    record(args.output, args, results)


if __name__ == "__main__":
    main()
