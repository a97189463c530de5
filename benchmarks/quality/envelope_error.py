"""How far is each lip encoder's envelope from the speech's, on new faces and sentences?

The lips' envelope regression is where the letters are lost (BENCHMARKS.md, "Ninth session"):
this scores lip encoders by the squared error of their envelope channels against the clean
speech's log-mel envelope (`lips_matter.true_envelope`) on whole held-out clips, read through the
model's own lip path (its crops and windows), and the error of the envelope's fast part (the
envelope minus `slow_part`: the movements that tell letters apart). A training run's validation
figure uses its own speakers; this one the faces and voices of a corpus seed never trained on.

    .venv/bin/python -m benchmarks.quality.envelope_error --model models/v2s-context \\
        --encoders models/v2s-context runs/s49/lips-cached/model --test data/synth-v2s-test/manifest.jsonl \\
        --train data/synth-v2s/train.jsonl data/synth-v2s-32spk/train.jsonl --clips 78 \\
        --output benchmarks/results/envelope-error/tune

Each `--encoders` entry is a lip encoder folder or a model folder holding one (`lip_encoder/`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from benchmarks.common.record import record
from benchmarks.common.rows import mean_ci, mean_ci_values
from benchmarks.quality.lips_matter import clip_inputs, new_sentence_items, separate_envelope, true_envelope


def clip_errors(envelope: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """Mean squared error of the whole envelope and of its fast part, over frames and bands."""
    from avdiff.audio.envelope import slow_part

    frames = min(len(envelope), len(truth))
    envelope, truth = envelope[:frames].float(), truth[:frames].float()
    fast = (envelope - slow_part(envelope)) - (truth - slow_part(truth))
    return {"error": float((envelope - truth).square().mean()), "fast_error": float(fast.square().mean())}


@torch.no_grad()
def score(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    """encoder -> metric -> per-clip values, on the first `--clips` new-sentence clips."""
    from avdiff.models.lip_encoder import lip_encoder_folder
    from avdiff.pipeline.loading import load_pipeline

    torch.set_num_threads(args.threads)
    pipeline = load_pipeline(args.model)
    items = new_sentence_items(args.test, args.train, args.clips)
    values: dict[str, dict[str, list[float]]] = {str(e): {"error": [], "fast_error": []} for e in args.encoders}
    for item in items:
        clean, video = clip_inputs(args.test, item)
        truth = true_envelope(pipeline, clean, len(video.rois))
        for encoder in args.encoders:
            envelope = separate_envelope(pipeline, lip_encoder_folder(encoder), video).cpu()
            for metric, value in clip_errors(envelope, truth).items():
                values[str(encoder)][metric].append(value)
    return values


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/v2s-context"), help="the pipeline whose lip path reads the clips")
    parser.add_argument("--encoders", type=Path, nargs="+", required=True, help="lip encoder or model folders to score")
    parser.add_argument("--test", type=Path, required=True, help="test manifest (a corpus seed never trained on)")
    parser.add_argument("--train", type=Path, nargs="+", required=True, help="training manifests: their sentences are left out")
    parser.add_argument("--clips", type=int, default=36, help="new-sentence clips scored")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--output", type=Path, required=True, help="folder of record.json")
    args = parser.parse_args(argv)
    values = score(args)
    first = str(args.encoders[0])
    results = {}
    for encoder, metrics in values.items():
        results[encoder] = {metric: mean_ci_values(v) for metric, v in metrics.items()}
        line = ", ".join(f"{metric} {mean_ci(v)}" for metric, v in metrics.items())
        if encoder != first:
            for metric, v in metrics.items():
                difference = list(np.subtract(v, values[first][metric]))
                results[encoder][f"{metric}_minus_first"] = mean_ci_values(difference)
                line += f", {metric} - first {mean_ci(difference)}"
        print(f"{encoder}: {line}", flush=True)
    record(args.output, args, results)


if __name__ == "__main__":
    main()
